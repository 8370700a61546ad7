"""What a reader sees of a cluster: node state counts and SSH coordinates (pure)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from adapter.backends.base import SlurmJob
from adapter.clusters.inventory import NODE_STATES, batchai_node_state
from adapter.records import Cluster
from adapter.settings import RemoteLoginSettings
from adapter.snapshot import Snapshot


def node_states(cluster: Cluster, snapshot: Snapshot | None) -> dict[str, str]:
    """Node name -> Batch AI node state, for every node of the cluster."""
    busy: dict[str, list[SlurmJob]] = {}
    if snapshot is not None:
        for job in snapshot.jobs_in(cluster.partition):
            if job.state == "RUNNING":
                for node in job.nodes:
                    busy.setdefault(node, []).append(job)
    return {
        name: batchai_node_state(
            row.state, snapshot.nodes.get(name) if snapshot else None, busy.get(name, ())
        )
        for name, row in cluster.nodes.items()
    }


def node_state_counts(cluster: Cluster, snapshot: Snapshot | None) -> dict[str, int]:
    """The `nodeStateCounts` object of a cluster."""
    counts = dict.fromkeys(NODE_STATES, 0)
    for state in node_states(cluster, snapshot).values():
        counts[state] += 1
    return {f"{state}NodeCount": n for state, n in counts.items()}


@dataclass(frozen=True)
class RemoteLogin:
    node_id: str
    ip_address: str
    port: int


def remote_logins(
    nodes: Iterable[str], snapshot: Snapshot | None, cfg: RemoteLoginSettings
) -> list[RemoteLogin]:
    """SSH coordinates of nodes: NodeAddr and the SSH port, or the operator's NAT mapping."""
    inventory = sorted(snapshot.nodes) if snapshot else []
    logins = []
    for name in sorted(nodes):
        if name in cfg.nodes:
            host, _, mapped = cfg.nodes[name].rpartition(":")
            logins.append(RemoteLogin(name, host, int(mapped)))
            continue
        node = snapshot.nodes.get(name) if snapshot else None
        address = node.address if node else name
        port = cfg.ssh_port
        if cfg.public_address is not None:
            address = cfg.public_address
        if cfg.port_base is not None and name in inventory:
            port = cfg.port_base + inventory.index(name)
        logins.append(RemoteLogin(name, address, port))
    return logins
