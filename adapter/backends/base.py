"""The Slurm backend interface and the snapshots it returns (DESIGN.md section 4).

Names keep Slurm's own words (`PENDING`, `PriorityTier`); translation into Batch AI terms
happens above this layer.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from adapter.backends.slurm_options import SlurmOptions

# Job states after which Slurm will not run the job again by itself.
TERMINAL_JOB_STATES = frozenset(
    {
        "BOOT_FAIL",
        "CANCELLED",
        "COMPLETED",
        "DEADLINE",
        "FAILED",
        "NODE_FAIL",
        "OUT_OF_MEMORY",
        "PREEMPTED",
        "TIMEOUT",
    }
)

# What Slurm accepts as a partition or node name in slurm.conf (no spaces, '=', '#' or newlines).
SLURM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True, slots=True)
class SlurmJob:
    """One job as Slurm reports it."""

    job_id: int
    name: str
    user: str
    partition: str
    state: str  # Slurm's word: PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, TIMEOUT, ...
    state_reason: str
    comment: str
    restart_count: int
    nodes: tuple[str, ...]
    node_count: int
    submit_time: datetime | None
    start_time: datetime | None
    end_time: datetime | None
    time_limit_minutes: int | None  # None: no limit
    exit_status: int | None  # the batch script's exit status, once the job has ended
    term_signal: int | None  # the signal that killed it, if one did
    requeue: bool
    batch_host: str
    # Job arrays: the array's job id (the id sbatch printed), this record's task index, and
    # the indices still pending in this record ("2-3%2"); 0, None and "" outside arrays.
    array_job_id: int = 0
    array_task_id: int | None = None
    array_pending: str = ""

    @property
    def finished(self) -> bool:
        return self.state in TERMINAL_JOB_STATES


@dataclass(frozen=True, slots=True)
class SlurmNode:
    """One node as Slurm reports it."""

    name: str
    address: str
    hostname: str
    port: int | None
    state: str  # base state: IDLE, ALLOCATED, MIXED, DOWN, FUTURE, UNKNOWN, ERROR
    flags: frozenset[str]  # DRAIN, NOT_RESPONDING, COMPLETING, POWERING_UP, ...
    gres: str  # as configured: gpu:a100:2
    gpu_type: str | None
    gpus: int
    gpus_used: int
    cpus: int
    real_memory_mb: int
    features: tuple[str, ...]
    partitions: tuple[str, ...]
    reason: str

    @property
    def usable(self) -> bool:
        """False when Slurm will not place work on the node (down, drained, not responding)."""
        bad_flags = {"DRAIN", "NOT_RESPONDING", "FAIL", "MAINTENANCE", "POWERED_DOWN"}
        return self.state not in {"DOWN", "ERROR", "FUTURE", "UNKNOWN"} and not (
            self.flags & bad_flags
        )


@dataclass(frozen=True, slots=True)
class SlurmPartition:
    """One partition as Slurm reports it (`scontrol show partition -o`)."""

    name: str
    nodes: tuple[str, ...]
    state: str
    priority_tier: int
    preempt_mode: str
    grace_time_seconds: int
    max_time: str  # Slurm's text: UNLIMITED or [days-]hours:minutes:seconds
    raw: dict[str, str] = field(default_factory=dict, compare=False)


@dataclass(frozen=True, slots=True)
class PartitionSpec:
    """The desired state of one adapter-owned partition."""

    name: str
    nodes: tuple[str, ...] = ()
    priority_tier: int = 1
    preempt_mode: str = "OFF"  # OFF (never preempted), REQUEUE or CANCEL
    grace_time_seconds: int = 0
    max_time_minutes: int | None = None  # None: UNLIMITED
    default_time_minutes: int | None = None  # None: the job gets MaxTime
    state: str = "UP"  # UP, DOWN (queue, do not start), DRAIN, INACTIVE
    exclusive: bool = True  # a job owns its nodes (Batch AI jobs take whole nodes)
    allow_groups: tuple[str, ...] = ()  # empty: ALL

    def __post_init__(self) -> None:
        problems = []
        if not SLURM_NAME.match(self.name):
            problems.append(f"name {self.name!r} is not a valid Slurm partition name")
        problems += [
            f"node {n!r} is not a valid Slurm node name"
            for n in self.nodes
            if not SLURM_NAME.match(n)
        ]
        problems += [
            f"group {g!r} is not a valid group name"
            for g in self.allow_groups
            if not SLURM_NAME.match(g)
        ]
        if self.preempt_mode not in {"OFF", "REQUEUE", "CANCEL"}:
            problems.append(f"preempt_mode {self.preempt_mode!r} is not OFF, REQUEUE or CANCEL")
        if self.state not in {"UP", "DOWN", "DRAIN", "INACTIVE"}:
            problems.append(f"state {self.state!r} is not UP, DOWN, DRAIN or INACTIVE")
        for label, value in (
            ("max_time_minutes", self.max_time_minutes),
            ("default_time_minutes", self.default_time_minutes),
        ):
            if value is not None and value <= 0:
                problems.append(f"{label} must be positive or None, not {value}")
        if self.priority_tier < 0 or self.grace_time_seconds < 0:
            problems.append("priority_tier and grace_time_seconds must not be negative")
        if problems:
            raise ValueError("invalid partition spec: " + "; ".join(problems))


class SlurmBackend(Protocol):
    """Everything bai asks of Slurm. Reads return snapshots; writes are idempotent."""

    async def submit_job(self, options: SlurmOptions, script: str, *, user: str) -> int:
        """Submit a batch job as a Unix user, its options given as data; returns the Slurm job
        id. The script's `#SBATCH` lines are `options.directives()` (else BackendError): sbatch
        reads the options from them, the in-process path takes the value as it is, and both
        send Slurm the same script."""
        ...

    async def submit(self, script: str, *, user: str, args: Sequence[str] = ()) -> int:
        """Submit a batch script whose own `#SBATCH` lines (and `args`, sbatch's command line)
        say what it needs, as a Unix user; returns the Slurm job id. Only for a job recorded
        before bai kept its options: everything else goes through `submit_job`."""
        ...

    async def cancel(self, job_id: int) -> None:
        """Cancel a job; a job Slurm no longer knows is not an error."""
        ...

    async def requeue(self, job_id: int) -> None:
        """Put a running or finished job back in the queue."""
        ...

    async def jobs(self, partitions: Collection[str]) -> list[SlurmJob]:
        """All jobs Slurm still remembers in the given partitions (one command or RPC)."""
        ...

    async def nodes(self) -> list[SlurmNode]:
        """All nodes (one command)."""
        ...

    async def partitions(self) -> list[SlurmPartition]:
        """All partitions (one command)."""
        ...

    async def apply_partition(self, spec: PartitionSpec) -> None:
        """Write the partition into the include file, then create or update it live."""
        ...

    async def remove_partition(self, name: str) -> None:
        """Delete the partition live, then drop it from the include file."""
        ...

    async def configured_partitions(self) -> list[str]:
        """Names of the partitions in the include file (no Slurm call)."""
        ...

    async def reserve_node(self, name: str, node: str, user: str) -> None:
        """Reserve a node for one user's jobs (a node being set up); idempotent."""
        ...

    async def release_reservation(self, name: str) -> None:
        """Delete a reservation; one Slurm no longer knows is not an error."""
        ...

    async def drain_node(self, node: str, reason: str) -> None:
        """Stop placing work on a node (running jobs finish)."""
        ...

    async def resume_node(self, node: str) -> None:
        """Return a drained node to service."""
        ...
