"""The node snapshot against the real dev cluster."""

from __future__ import annotations

import asyncio
import time

import pytest

from adapter.backends import CliBackend, SlurmNode
from adapter.backends.slurm_output import nodes_argv
from adapter.errors import BackendUnavailable
from tests.slurm.conftest import SlurmCluster

pytestmark = pytest.mark.slurm
RELEASES = ("22.05", "24.11")


async def test_snapshot_shows_every_node_with_address_gres_and_state(
    backend: CliBackend, cluster: SlurmCluster
) -> None:
    nodes = {n.name: n for n in await backend.nodes()}

    assert set(nodes) == set(cluster.nodes)
    for name, (address, gres) in cluster.nodes.items():
        node = nodes[name]
        assert (node.address, node.gres) == (address, gres)
        assert node.state in {"IDLE", "MIXED", "ALLOCATED"} and node.usable, node
        assert "pool" in node.partitions
    a100, t4 = cluster.with_gpu("a100")[0], cluster.with_gpu("t4")[0]
    assert nodes[a100].gpus == 2 and nodes[t4].gpu_type == "t4"


async def test_node_whose_slurmd_stops_becomes_unusable(
    backend: CliBackend, cluster: SlurmCluster
) -> None:
    name = cluster.with_gpu("t4")[0]
    cluster.daemonctl("stop", f"slurmd:{name}")
    try:
        node = await _wait_node(backend, name, lambda n: not n.usable, timeout=120)
        assert node.state == "DOWN" or "NOT_RESPONDING" in node.flags, node
    finally:
        cluster.daemonctl("start", f"slurmd:{name}")
    await _wait_node(backend, name, lambda n: n.usable, timeout=120)


async def test_controller_down_is_backend_unavailable(
    backend: CliBackend, cluster: SlurmCluster
) -> None:
    await backend.release()  # asked once, while the controller is up
    cluster.daemonctl("stop", "slurmctld")
    try:
        with pytest.raises(BackendUnavailable) as err:
            await backend.nodes()
        assert err.value.argv == tuple(nodes_argv(cluster.release))
    finally:
        cluster.daemonctl("start", "slurmctld")
    assert len(await backend.nodes()) == len(cluster.nodes)


async def _wait_node(backend: CliBackend, name: str, cond: object, *, timeout: float) -> SlurmNode:
    assert callable(cond)
    deadline = time.monotonic() + timeout
    while True:
        node = next(n for n in await backend.nodes() if n.name == name)
        if cond(node):
            return node
        if time.monotonic() > deadline:
            raise AssertionError(f"{name} did not reach the state in {timeout} s: {node}")
        await asyncio.sleep(1)
