"""The node snapshot against the real dev cluster."""

from __future__ import annotations

import asyncio
import time

import pytest

from adapter.backends import CliBackend, SlurmNode
from adapter.errors import BackendUnavailable
from tests.cluster import DEV_NODES
from tests.slurm.conftest import daemonctl

pytestmark = pytest.mark.slurm


async def test_snapshot_shows_every_dev_node_with_address_gres_and_state(
    backend: CliBackend,
) -> None:
    nodes = {n.name: n for n in await backend.nodes()}

    assert set(nodes) == set(DEV_NODES)
    for name, (address, gres) in DEV_NODES.items():
        node = nodes[name]
        assert (node.address, node.gres) == (address, gres)
        assert node.state in {"IDLE", "MIXED", "ALLOCATED"} and node.usable, node
        assert "pool" in node.partitions
    assert nodes["gpu-a100-1"].gpus == 2 and nodes["gpu-t4-1"].gpu_type == "t4"


async def test_node_whose_slurmd_stops_becomes_unusable(backend: CliBackend) -> None:
    daemonctl("stop", "slurmd:gpu-t4-1")
    try:
        node = await _wait_node(backend, "gpu-t4-1", lambda n: not n.usable, timeout=120)
        assert node.state == "DOWN" or "NOT_RESPONDING" in node.flags, node
    finally:
        daemonctl("start", "slurmd:gpu-t4-1")
    await _wait_node(backend, "gpu-t4-1", lambda n: n.usable, timeout=120)


async def test_controller_down_is_backend_unavailable(backend: CliBackend) -> None:
    daemonctl("stop", "slurmctld")
    try:
        with pytest.raises(BackendUnavailable) as err:
            await backend.nodes()
        assert err.value.argv == ("sinfo", "--json")
    finally:
        daemonctl("start", "slurmctld")
    assert len(await backend.nodes()) == len(DEV_NODES)


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
