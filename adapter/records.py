"""The records bai keeps: workspaces, experiments, clusters and their nodes, jobs, operations
and API tokens (DESIGN.md 3). Plain data; `adapter.store` persists them.

Each state field names its words (the Literal aliases below). A job's `info` is JSON in the
store: `JobInfo` is its shape for the type checker, not a validation of stored rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, NotRequired, TypedDict

from adapter.backends.slurm_options import SlurmOptionsJson

# provisioningState of a workspace, an experiment and a job: bai makes them at once.
Provisioning = Literal["succeeded", "deleting"]
# A cluster's provisioningState: "creating" until its first plan is carried out.
ClusterProvisioning = Literal["creating", "succeeded", "deleting"]
AllocationState = Literal["steady", "resizing"]
# A cluster's node, as bai has it: setting up, in service, its setup failed (drained), going.
NodeState = Literal["preparing", "ready", "failed", "leaving"]
VmPriority = Literal["dedicated", "lowpriority"]
ExecutionState = Literal["queued", "running", "terminating", "succeeded", "failed"]
FinalState = Literal["succeeded", "failed"]
OperationKind = Literal[
    "delete-workspace", "delete-experiment", "delete-cluster", "delete-job", "terminate-job"
]
OperationStatus = Literal["InProgress", "Succeeded", "Failed"]


@dataclass
class Workspace:
    sub: str
    rg: str
    name: str
    location: str
    tags: dict[str, str]
    created: datetime
    state: Provisioning
    state_changed: datetime
    owner: str  # the Unix user who created it


@dataclass
class Experiment:
    sub: str
    rg: str
    ws: str
    name: str
    created: datetime
    state: Provisioning
    state_changed: datetime
    owner: str


@dataclass
class ClusterNode:
    node: str
    state: NodeState
    setup_job: int | None
    since: datetime
    idle_since: datetime | None


@dataclass
class Cluster:
    uid: str
    sub: str
    rg: str
    ws: str
    name: str
    partition: str
    node_type: str
    priority: VmPriority
    properties: dict[str, Any]  # the create request's properties, secrets removed
    secrets: dict[str, Any]  # secret values kept out of `properties`
    owner: str
    created: datetime
    provisioning_state: ClusterProvisioning
    provisioning_changed: datetime
    allocation_state: AllocationState
    allocation_changed: datetime
    errors: list[dict[str, Any]]
    nodes: dict[str, ClusterNode] = field(default_factory=dict)


class LayoutInfo(TypedDict):
    """A job's JobLayout (adapter.jobs.layout), field for field."""

    segment: str
    job_temp: str
    job_temp_dir: str
    job_mount_root: str
    mount_root: str
    spool: str
    shared_temp: str
    stdouterr: str  # '' for a `bai sbatch` job
    outputs: dict[str, str]
    inputs: dict[str, str]


class VolumeInfo(TypedDict):
    """A resolved Volume (adapter.jobs.volumes), field for field."""

    label: str
    kind: str
    source: str
    options: str
    mountpoint: str
    adapter_path: str | None
    remote: dict[str, str]  # the rclone section; {} for other kinds
    remote_name: str


class TaskInfo(TypedDict, total=False):
    """One task of a `bai sbatch` job array, as the reconciler last saw it."""

    state: ExecutionState
    exitCode: int | None
    errors: list[dict[str, Any]]
    jobId: int  # the task's own Slurm job id
    node: str
    host: str  # `%N` in its -o/-e
    restarts: int
    start: str  # ISO time


class SbatchInfo(TypedDict):
    """What a `bai sbatch` job's -o/-e files and array are made from."""

    workdir: str
    output: str | None
    error: str | None
    array: str | None
    jobName: str | None
    tasks: dict[str, TaskInfo]  # array index -> task
    host: NotRequired[str]  # a job's `%N`, once it runs (an array's tasks have their own)


class JobInfo(TypedDict):
    """What bai derived at a job's creation (and a `bai sbatch` job learns as it runs)."""

    toolType: str
    segment: str  # jobOutputDirectoryPathSegment
    layout: LayoutInfo
    capped: bool  # the low-priority cap set its time limit
    limitSeconds: int | None  # None: a `bai sbatch` job with no time limit
    capSeconds: int
    labels: dict[str, str]  # its metric labels (adapter.jobs.service.job_labels)
    volumes: list[VolumeInfo]
    kind: NotRequired[Literal["sbatch"]]  # absent for a job.json job
    slurm: NotRequired[SlurmOptionsJson]  # a job.json job's options (older rows lack them)
    sbatch: NotRequired[SbatchInfo]


@dataclass
class Job:
    uid: str
    sub: str
    rg: str
    ws: str
    exp: str
    name: str
    cluster_uid: str
    owner: str
    properties: dict[str, Any]  # the create request's properties, secret values removed
    secrets: dict[str, str]
    script: str  # the rendered batch script (kept so a resubmission is the same script)
    info: JobInfo
    created: datetime
    provisioning_state: Provisioning
    provisioning_changed: datetime
    execution_state: ExecutionState
    execution_changed: datetime
    # What Slurm and the job have made of it so far (the defaults: a job not yet submitted).
    slurm_id: int | None = None
    terminate: bool = False
    start_time: datetime | None = None
    end_time: datetime | None = None
    exit_code: int | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    restarts: int = 0
    nodes: list[str] = field(default_factory=list)

    @property
    def final(self) -> bool:
        return self.execution_state in {"succeeded", "failed"}


@dataclass
class Operation:
    id: str
    kind: OperationKind
    target: str
    status: OperationStatus
    error: dict[str, Any] | None
    created: datetime
    updated: datetime
    owner: str  # who asked for it: only they (and admins) may read its status


@dataclass(frozen=True)
class TokenRecord:
    """A stored token: the SHA-256 of the token (never the token), its user and dates.
    `expires` None: never (tokens made before expiry existed, and the dev token)."""

    hash: str
    user: str
    admin: bool
    label: str
    created: datetime
    expires: datetime | None
    last_used: datetime | None
