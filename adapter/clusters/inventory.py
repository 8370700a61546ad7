"""Node types and Batch AI node states, read from a Slurm node snapshot (pure).

A node type is a Slurm node feature (the dev inventory tags each node with its type, e.g.
`Features=a100x2`). A type is usable for clusters only if all its nodes are identical in GPUs,
CPUs and memory: a Batch AI cluster is a set of identical machines.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from adapter.backends.base import SlurmJob, SlurmNode
from adapter.errors import InvalidRequest

# Batch AI node states (NodeStateCounts keys without "NodeCount").
NODE_STATES = ("idle", "running", "preparing", "unusable", "leaving")
# Drain reasons bai sets start with this, so bai never clears an operator's drain.
REASON_PREFIX = "bai:"


@dataclass(frozen=True, slots=True)
class NodeType:
    """One node type of the inventory."""

    name: str
    nodes: tuple[str, ...]
    gres: str
    gpu_type: str | None
    gpus: int
    cpus: int
    memory_mb: int
    problem: str | None  # why the type cannot back a cluster (nodes differ), if it cannot

    def describe(self) -> str:
        size = f"{self.gres}, {self.cpus} CPUs, {self.memory_mb} MB"
        return f"{self.name} ({len(self.nodes)} nodes, {size})"


def node_types(nodes: Iterable[SlurmNode]) -> dict[str, NodeType]:
    """Node types by feature name, each with the check that its nodes are identical."""
    by_feature: dict[str, list[SlurmNode]] = {}
    for node in nodes:
        for feature in node.features:
            by_feature.setdefault(feature, []).append(node)
    types = {}
    for name, members in sorted(by_feature.items()):
        shapes = {(n.gres, n.cpus, n.real_memory_mb) for n in members}
        first = members[0]
        problem = None
        if len(shapes) > 1:
            detail = "; ".join(
                f"{n.name}: {n.gres}, {n.cpus} CPUs, {n.real_memory_mb} MB"
                for n in sorted(members, key=lambda n: n.name)
            )
            problem = f"nodes of type {name} are not identical ({detail})"
        types[name] = NodeType(
            name=name,
            nodes=tuple(sorted(n.name for n in members)),
            gres=first.gres,
            gpu_type=first.gpu_type,
            gpus=first.gpus,
            cpus=first.cpus,
            memory_mb=first.real_memory_mb,
            problem=problem,
        )
    return types


def resolve_vm_size(
    vm_size: str, types: Mapping[str, NodeType], aliases: Mapping[str, str]
) -> NodeType:
    """The node type a Batch AI `vmSize` names (a type name or an alias, any case)."""
    by_lower = {name.lower(): t for name, t in types.items()}
    target = aliases.get(vm_size.upper(), vm_size)
    found = by_lower.get(target.lower())
    if found is None:
        known = ", ".join(t.describe() for t in types.values()) or "none (is Slurm reachable?)"
        alias_text = ", ".join(f"{a} -> {t}" for a, t in sorted(aliases.items()))
        raise InvalidRequest(
            f"vmSize {vm_size!r} is not a node type of this cluster. Known node types: {known}"
            + (f"; aliases: {alias_text}" if alias_text else "")
            + ". Use one of them, or ask the operator to add an alias in vm_size_aliases.",
            target="properties.vmSize",
        )
    if found.problem:
        raise InvalidRequest(
            f"vmSize {vm_size!r} cannot back a cluster: {found.problem}. "
            "Ask the operator to give the differing nodes their own node type.",
            target="properties.vmSize",
        )
    return found


def batchai_node_state(
    row_state: str, node: SlurmNode | None, busy_with: Iterable[SlurmJob]
) -> str:
    """The Batch AI state of one cluster node.

    `row_state` is bai's own record (preparing, ready, failed, leaving); `node` is Slurm's view,
    `busy_with` the running jobs on it. A node busy with another cluster's work (a low-priority
    cluster's node that a dedicated cluster also owns) counts as running: it is executing jobs.
    """
    if row_state == "leaving":
        return "leaving"
    if row_state == "failed" or node is None or not node.usable:
        return "unusable"
    if row_state == "preparing" or node.flags & {"COMPLETING", "POWERING_UP", "CONFIGURING"}:
        return "preparing"
    if node.state in {"ALLOCATED", "MIXED"} or any(True for _ in busy_with):
        return "running"
    return "idle"
