"""Node state counts and SSH coordinates (pure)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from adapter.backends.base import SlurmJob, SlurmNode
from adapter.clusters.inventory import node_types, resolve_vm_size
from adapter.clusters.view import node_state_counts, remote_logins
from adapter.errors import InvalidRequest
from adapter.settings import RemoteLoginSettings
from adapter.snapshot import Snapshot
from tests.unit.clusters.factories import T0, cluster, job, node


def snap(nodes: list[SlurmNode], jobs: list[SlurmJob] | None = None) -> Snapshot:
    return Snapshot.build(T0 + timedelta(minutes=1), nodes, jobs or [])


def test_counts_map_slurm_and_bai_states_to_batch_ai() -> None:
    c = cluster(
        rows={
            "n1": "ready",
            "n2": "ready",
            "n3": "preparing",
            "n4": "leaving",
            "n5": "failed",
            "n6": "ready",
        }
    )
    nodes = [
        node("n1"),
        node("n2", state="ALLOCATED"),
        node("n3"),
        node("n4", state="ALLOCATED"),
        node("n5", flags=frozenset({"DRAIN"})),
        node("n6", flags=frozenset({"NOT_RESPONDING"})),
    ]
    counts = node_state_counts(c, snap(nodes, [job(1, c.partition, nodes=("n2",))]))
    assert counts == {
        "idleNodeCount": 1,
        "runningNodeCount": 1,
        "preparingNodeCount": 1,
        "leavingNodeCount": 1,
        "unusableNodeCount": 2,
    }


def test_remote_login_uses_node_addresses_or_the_nat_mapping() -> None:
    s = snap([node("n1", address="10.1.0.1"), node("n2", address="10.1.0.2"), node("n3")])
    plain = remote_logins(["n2", "n1"], s, RemoteLoginSettings(ssh_port=2222))
    assert [(r.node_id, r.ip_address, r.port) for r in plain] == [
        ("n1", "10.1.0.1", 2222),
        ("n2", "10.1.0.2", 2222),
    ]
    nat = remote_logins(
        ["n2", "n3"], s, RemoteLoginSettings(public_address="203.0.113.7", port_base=50000)
    )
    assert [(r.ip_address, r.port) for r in nat] == [("203.0.113.7", 50001), ("203.0.113.7", 50002)]
    pinned = remote_logins(["n1"], s, RemoteLoginSettings(nodes={"n1": "bastion.example:40022"}))
    assert (pinned[0].ip_address, pinned[0].port) == ("bastion.example", 40022)


def test_vm_sizes_resolve_by_type_or_alias_and_refuse_mixed_types() -> None:
    types = node_types([node("n1"), node("n2"), node("t1", feature="t4x1")])
    assert resolve_vm_size("A100X2", types, {}).nodes == ("n1", "n2")
    assert resolve_vm_size("Standard_NC6", types, {"STANDARD_NC6": "t4x1"}).name == "t4x1"
    with pytest.raises(InvalidRequest, match="Known node types: a100x2 .2 nodes, gpu:a100:2"):
        resolve_vm_size("STANDARD_ND40", types, {})
    mixed = node_types([node("n1"), replace(node("n9"), cpus=64)])
    with pytest.raises(InvalidRequest, match="not identical"):
        resolve_vm_size("a100x2", mixed, {})
