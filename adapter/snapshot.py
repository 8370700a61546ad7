"""The last picture of Slurm the reconciler took. API reads and /metrics use only this."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from adapter.backends.base import SlurmJob, SlurmNode
from adapter.clusters.inventory import NodeType, node_types


@dataclass(frozen=True)
class Snapshot:
    """Nodes and jobs of the managed partitions, as of `taken`."""

    taken: datetime
    nodes: Mapping[str, SlurmNode]
    jobs: Sequence[SlurmJob]
    types: Mapping[str, NodeType] = field(default_factory=dict)

    @classmethod
    def build(
        cls, taken: datetime, nodes: Sequence[SlurmNode], jobs: Sequence[SlurmJob]
    ) -> Snapshot:
        return cls(
            taken=taken,
            nodes={n.name: n for n in nodes},
            jobs=tuple(jobs),
            types=node_types(nodes),
        )

    def jobs_in(self, partition: str) -> list[SlurmJob]:
        return [j for j in self.jobs if j.partition == partition]


@dataclass
class SlurmHealth:
    """How the conversation with Slurm is going (for /metrics and errors)."""

    reachable: bool = False
    last_success: datetime | None = None
    last_error: str | None = None
    last_duration_seconds: float = 0.0
    errors_total: int = 0
    passes_total: int = 0
