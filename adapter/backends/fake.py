"""`FakeSlurm`: Slurm in memory, for unit tests of the layers above the backend (DESIGN.md
section 4). Never for the Slurm contract tests: those run on the real cluster.

It holds jobs, nodes, partitions, reservations and the partition include file, and answers with
the snapshots the real backends give: job records go through `job_from_fields`, as squeue's and
libslurm's do, so times are whole seconds, a pending job has no start time and an exit status
exists only once the job has ended. `submit_job` checks the script against its options as
both real backends do and keeps the value; `submit` (a script alone) reads its `#SBATCH` lines
with libslurm's `read_options`, so a directive in-process submission cannot take fails here too.

What the layers above meet of Slurm is kept: sbatch refuses what 22.05 with
`EnforcePartLimits=ALL` refuses (an unknown, drained or inactive partition, a group not in
AllowGroups, more nodes or time than the partition has, an unknown reservation); a requeue
counts in `restart_count` and leaves the job PENDING with reason BeginTime; `scancel` of a job
already gone is no error; a partition with unfinished jobs cannot be deleted. Nothing moves by
itself: a test starts, finishes, preempts and fails jobs and nodes with the controls below.
"""

from __future__ import annotations

import pwd
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from adapter.backends import partition_conf
from adapter.backends.base import (
    SLURM_NAME,
    TERMINAL_JOB_STATES,
    PartitionSpec,
    SlurmJob,
    SlurmNode,
    SlurmPartition,
)
from adapter.backends.cli import DEFAULT_INCLUDE
from adapter.backends.libslurm import read_options
from adapter.backends.runner import CommandResult, File
from adapter.backends.slurm_options import SlurmOptions, check_script
from adapter.backends.slurm_output import job_from_fields
from adapter.errors import BackendError, BackendUnavailable
from adapter.unix import groups_of

SIGTERM = 15  # what a cancelled, preempted or timed-out batch shell dies of
SBATCH_REFUSED = "sbatch: error: Batch job submission failed: "
SCONTROL_REFUSED = "scontrol: error: "
# Pending reasons that keep a job off the nodes until someone acts (schedule() leaves them).
HELD = frozenset({"JobHeldUser", "JobHeldAdmin"})


class MemoryRunner:
    """The `Runner` of a FakeSlurm: files in a dict (the include file, setup secrets); it runs
    no command, as nothing above the backend should."""

    def __init__(self) -> None:
        self.files: dict[str, File] = {}
        self.removed: list[str] = []

    async def run(
        self,
        argv: Sequence[str],
        *,
        user: str | None = None,
        stdin: str | None = None,
        timeout: float = 60.0,
    ) -> CommandResult:
        raise BackendUnavailable("the fake Slurm runs no commands", argv=argv)

    async def read_text(self, path: str) -> str | None:
        found = self.files.get(path)
        return found.text if found else None

    async def write_text(
        self, path: str, text: str, mode: int = 0o644, owner: str | None = None
    ) -> None:
        self.files[path] = File(path, text, mode, owner)

    async def remove(self, path: str) -> None:
        self.removed.append(path)
        for name in [p for p in self.files if p == path or p.startswith(path.rstrip("/") + "/")]:
            del self.files[name]


@dataclass
class FakeJob:
    """One job as the fake slurmctld holds it. Times are epoch seconds (0: unset) and
    `exit_code` a wait(2) status, as Slurm keeps them."""

    job_id: int
    script: str
    user: str
    args: tuple[str, ...]
    options: SlurmOptions
    partition: str
    node_count: int
    time_limit: int  # minutes, 0: none
    requeue: bool
    submit_time: int
    state: str = "PENDING"
    reason: str = "None"
    nodes: tuple[str, ...] = ()
    restart_count: int = 0
    start_time: int = 0
    end_time: int = 0
    exit_code: int = 0

    @property
    def finished(self) -> bool:
        return self.state in TERMINAL_JOB_STATES

    def snapshot(self) -> SlurmJob:
        return job_from_fields(
            job_id=self.job_id,
            name=self.options.job_name or "sbatch",
            user=self.user,
            partition=self.partition,
            state=self.state,
            state_reason=self.reason,
            comment=self.options.comment or "",
            restart_count=self.restart_count,
            nodes=",".join(self.nodes),
            node_count=len(self.nodes) or self.node_count,
            submit_time=self.submit_time,
            start_time=self.start_time,
            end_time=self.end_time,
            time_limit=self.time_limit,
            exit_code=self.exit_code,
            requeue=self.requeue,
            batch_host=self.nodes[0] if self.nodes else "",
        )


@dataclass
class FakeNode:
    """One node: its configuration, and what an operator or a failure did to it."""

    name: str
    address: str
    hostname: str
    port: int | None
    gpu_type: str | None
    gpus: int
    cpus: int
    memory_mb: int
    features: tuple[str, ...]
    down: bool = False
    flags: set[str] = field(default_factory=set)
    reason: str = ""

    @property
    def gres(self) -> str:
        if not self.gpus:
            return ""
        return f"gpu:{self.gpu_type}:{self.gpus}" if self.gpu_type else f"gpu:{self.gpus}"


class FakeSlurm:
    """An in-memory `SlurmBackend`, with controls that play slurmctld's part."""

    def __init__(
        self,
        *,
        include_path: str = DEFAULT_INCLUDE,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        first_job_id: int = 1,
    ) -> None:
        self.runner = MemoryRunner()  # ClusterService places setup secrets through it
        self.include_path = include_path
        self.clock = clock
        self.unreachable = False  # True: every call fails as with slurmctld stopped
        self._next_id = first_job_id
        self._jobs: dict[int, FakeJob] = {}
        self._nodes: dict[str, FakeNode] = {}
        self._partitions: dict[str, PartitionSpec] = {}
        self.reservations: dict[str, tuple[str, str]] = {}  # name -> (node, user)
        # What the layers above asked for, in order.
        self.submitted: list[FakeJob] = []
        self.cancelled: list[int] = []
        self.requeued: list[int] = []

    # -- the SlurmBackend protocol -------------------------------------------------------------

    async def submit_job(self, options: SlurmOptions, script: str, *, user: str) -> int:
        self._reachable("sbatch")
        check_script(options, script)
        return self._queue(options, script, user, ())

    async def submit(self, script: str, *, user: str, args: Sequence[str] = ()) -> int:
        self._reachable("sbatch")
        return self._queue(read_options(script, args), script, user, args)

    def _queue(self, options: SlurmOptions, script: str, user: str, args: Sequence[str]) -> int:
        """sbatch's checks, then a PENDING job; its id."""
        argv = ("sbatch", "--parsable", *args)
        try:
            pwd.getpwnam(user)
        except KeyError:
            raise BackendUnavailable(f"no Unix user {user!r} on this host", argv=argv) from None
        spec = self._partitions.get(options.partition or "")
        if spec is None:
            raise _refused(argv, "Invalid partition name specified")
        if spec.state in {"DRAIN", "INACTIVE"}:
            raise _refused(argv, "Required partition not available (inactive or drain)")
        if spec.allow_groups and user != "root" and not groups_of(user) & set(spec.allow_groups):
            raise _refused(argv, "User's group not permitted to use this partition")
        count = options.nodes or 1
        if count > len(spec.nodes):  # EnforcePartLimits=ALL refuses rather than queues
            raise _refused(argv, "Node count specification invalid")
        limit = options.time_minutes or spec.default_time_minutes or spec.max_time_minutes or 0
        if spec.max_time_minutes is not None and limit > spec.max_time_minutes:
            raise _refused(argv, "Requested time limit is invalid (missing or exceeds some limit)")
        if options.reservation is not None and options.reservation not in self.reservations:
            raise _refused(argv, "Requested reservation is invalid")
        if options.nodelist is not None and not set(options.nodelist.split(",")) <= set(spec.nodes):
            raise _refused(argv, "Requested node configuration is not available")
        job = FakeJob(
            job_id=self._next_id,
            script=script,
            user=user,
            args=tuple(args),
            options=options,
            partition=spec.name,
            node_count=count,
            time_limit=limit,
            requeue=options.requeue if options.requeue is not None else True,  # JobRequeue=1
            submit_time=self._now(),
        )
        self._next_id += 1
        self._jobs[job.job_id] = job
        self.submitted.append(job)
        return job.job_id

    async def cancel(self, job_id: int) -> None:
        self._reachable("scancel")
        self.cancelled.append(job_id)
        job = self._jobs.get(job_id)
        if job is None or job.finished:
            return  # scancel of a job gone or done is no error (CliBackend's _JOB_GONE)
        if job.state == "PENDING":
            # Slurm gives a job cancelled while pending its cancel time as start time.
            self._end(job, "CANCELLED", 0)
            job.start_time = job.end_time
        else:
            self._end(job, "CANCELLED", SIGTERM)

    async def requeue(self, job_id: int) -> None:
        self._reachable("scontrol")
        argv = ("scontrol", "requeue", str(job_id))
        job = self._jobs.get(job_id)
        if job is None:
            raise _refused(argv, "Invalid job id specified", prefix=SCONTROL_REFUSED)
        if job.state == "PENDING":
            raise _refused(argv, "Job is pending execution", prefix=SCONTROL_REFUSED)
        if not job.requeue:
            raise _refused(
                argv, "Requested operation is presently disabled", prefix=SCONTROL_REFUSED
            )
        self.requeued.append(job_id)
        self._back_to_queue(job)

    async def jobs(self, partitions: Collection[str]) -> list[SlurmJob]:
        self._reachable("squeue")
        wanted = set(partitions)
        return [j.snapshot() for j in self._jobs.values() if j.partition in wanted]

    async def nodes(self) -> list[SlurmNode]:
        self._reachable("sinfo")
        busy = {n for j in self._jobs.values() if j.state == "RUNNING" for n in j.nodes}
        return [self._node(n, n.name in busy) for n in self._nodes.values()]

    async def partitions(self) -> list[SlurmPartition]:
        self._reachable("scontrol")
        return [_partition(spec) for spec in self._partitions.values()]

    async def apply_partition(self, spec: PartitionSpec) -> None:
        self._reachable("scontrol")
        # File first, as CliBackend: a live refusal leaves the file saying what is wanted.
        text = await self.runner.read_text(self.include_path) or ""
        updated = partition_conf.upsert_partition(text, spec)
        if updated != text:
            await self.runner.write_text(self.include_path, updated)
        unknown = [n for n in spec.nodes if n not in self._nodes]
        if unknown:
            words = partition_conf.partition_words(spec, live=True)
            raise _refused(
                ("scontrol", "update", *words),
                f"Invalid node name specified ({','.join(unknown)})",
                prefix=SCONTROL_REFUSED,
            )
        self._partitions[spec.name] = spec

    async def remove_partition(self, name: str) -> None:
        if not SLURM_NAME.match(name):
            raise BackendError(f"{name!r} is not a valid Slurm partition name")
        self._reachable("scontrol")
        if any(j.partition == name and not j.finished for j in self._jobs.values()):
            raise _refused(
                ("scontrol", "delete", f"PartitionName={name}"),
                "Partition is in use",
                prefix=SCONTROL_REFUSED,
            )
        self._partitions.pop(name, None)
        text = await self.runner.read_text(self.include_path) or ""
        updated = partition_conf.drop_partition(text, name)
        if updated != text:
            await self.runner.write_text(self.include_path, updated)

    async def configured_partitions(self) -> list[str]:
        return partition_conf.partition_names(await self.runner.read_text(self.include_path) or "")

    async def reserve_node(self, name: str, node: str, user: str) -> None:
        for value in (name, node):
            if not SLURM_NAME.match(value):
                raise BackendError(f"{value!r} is not a valid Slurm name")
        self._reachable("scontrol")
        if node not in self._nodes:
            raise _refused(
                ("scontrol", "create", "reservation", f"ReservationName={name}"),
                "Invalid node name specified",
                prefix=SCONTROL_REFUSED,
            )
        self.reservations.setdefault(name, (node, user))

    async def release_reservation(self, name: str) -> None:
        self._reachable("scontrol")
        self.reservations.pop(name, None)

    async def drain_node(self, node: str, reason: str) -> None:
        self._reachable("scontrol")
        found = self._known_node(node)
        found.flags.add("DRAIN")
        found.reason = reason

    async def resume_node(self, node: str) -> None:
        self._reachable("scontrol")
        found = self._known_node(node)
        # What RESUME does to a node whose slurmd answers: back in service, reason cleared.
        found.flags -= {"DRAIN", "NOT_RESPONDING"}
        found.down, found.reason = False, ""

    # -- controls: the inventory ---------------------------------------------------------------

    def add_node(
        self,
        name: str,
        gpu_type: str | None = "a100",
        gpus: int = 2,
        *,
        cpus: int = 8,
        memory_mb: int = 16384,
        features: Iterable[str] | None = None,
        address: str | None = None,
        hostname: str | None = None,
        port: int | None = None,
    ) -> None:
        """A node with `gpus` GPUs of `gpu_type`; its feature (the node type) is
        `<type>x<count>` unless given, as the dev inventory names them (a100x2)."""
        if not SLURM_NAME.match(name):
            raise ValueError(f"{name!r} is not a valid Slurm node name")
        self._nodes[name] = FakeNode(
            name=name,
            address=address or name,
            hostname=hostname or name,
            port=port,
            gpu_type=gpu_type,
            gpus=gpus,
            cpus=cpus,
            memory_mb=memory_mb,
            features=tuple(features) if features is not None else (f"{gpu_type}x{gpus}",),
        )

    def fail_node(self, node: str, reason: str = "Not responding") -> list[int]:
        """The node goes DOWN: its requeue-able jobs are requeued, the others end NODE_FAIL.
        Returns the ids of the jobs it ran."""
        found = self._known_node(node)
        found.down, found.reason = True, reason
        found.flags.add("NOT_RESPONDING")
        hit = [j for j in self._jobs.values() if j.state == "RUNNING" and node in j.nodes]
        for job in hit:
            if job.requeue:
                self._back_to_queue(job)
            else:
                self._end(job, "NODE_FAIL", 0)
        return [j.job_id for j in hit]

    def add_partition(self, spec: PartitionSpec) -> None:
        """A partition of slurm.conf itself: live, and not in bai's include file."""
        self._partitions[spec.name] = spec

    def lose_partition(self, name: str) -> None:
        """The partition vanishes from slurmctld, not from the file (a restart without the
        Include line, a reconfigure without KeepPartInfo)."""
        del self._partitions[name]

    # -- controls: jobs ------------------------------------------------------------------------

    def job(self, job_id: int) -> FakeJob:
        """The record of a job Slurm still remembers (KeyError if it does not)."""
        return self._jobs[job_id]

    def start(self, job_id: int, nodes: Sequence[str] | None = None) -> tuple[str, ...]:
        """Run a pending job on `nodes`, or on the first free usable nodes it may use."""
        job = self._jobs[job_id]
        if job.state != "PENDING":
            raise ValueError(f"job {job_id} is {job.state}, not PENDING")
        free = self._free_for(job)
        chosen = tuple(nodes) if nodes is not None else tuple(free[: job.node_count])
        if len(chosen) != job.node_count or not set(chosen) <= set(free):
            raise ValueError(f"job {job_id} needs {job.node_count} free node(s) of its partition")
        job.state, job.reason, job.nodes = "RUNNING", "None", chosen
        job.start_time, job.end_time = self._now(), 0
        return chosen

    def schedule(self) -> list[int]:
        """Start every pending job that fits, oldest first (jobs held by a user or an admin,
        and those of a DOWN or INACTIVE partition, stay); the ids started."""
        started = []
        for job in sorted(self._jobs.values(), key=lambda j: j.job_id):
            spec = self._partitions.get(job.partition)
            if job.state != "PENDING" or job.reason in HELD or spec is None:
                continue
            # DRAIN takes no new job but runs those queued (slurm.conf.5).
            if spec.state in {"UP", "DRAIN"} and len(self._free_for(job)) >= job.node_count:
                self.start(job.job_id)
                started.append(job.job_id)
        return started

    def finish(
        self,
        job_id: int,
        exit_status: int = 0,
        *,
        state: str | None = None,
        signal: int | None = None,
    ) -> None:
        """End a running job: COMPLETED on exit 0, else FAILED, unless `state` says otherwise
        (TIMEOUT, OUT_OF_MEMORY, ...). `signal` is what killed the batch shell, if anything."""
        job = self._jobs[job_id]
        if job.finished:
            raise ValueError(f"job {job_id} has already ended ({job.state})")
        ended = state or ("COMPLETED" if exit_status == 0 and signal is None else "FAILED")
        if ended not in TERMINAL_JOB_STATES:
            raise ValueError(f"{ended} is not a state a job ends in")
        self._end(job, ended, signal if signal is not None else (exit_status & 0xFF) << 8)

    def timeout(self, job_id: int) -> None:
        """The job ran into its time limit: SIGTERM, then TIMEOUT."""
        self.finish(job_id, state="TIMEOUT", signal=SIGTERM)

    def preempt(self, job_id: int) -> None:
        """A higher tier took the job's nodes: requeued (PreemptMode=REQUEUE, a requeue-able
        job) or ended PREEMPTED."""
        job = self._jobs[job_id]
        spec = self._partitions.get(job.partition)
        if job.state != "RUNNING":
            raise ValueError(f"job {job_id} is {job.state}; only running jobs are preempted")
        if spec is None or spec.preempt_mode == "OFF":
            raise ValueError(f"partition {job.partition} has PreemptMode=OFF")
        if spec.preempt_mode == "REQUEUE" and job.requeue:
            self._back_to_queue(job)
        else:
            self._end(job, "PREEMPTED", SIGTERM)

    def hold(self, job_id: int, reason: str = "JobHeldUser") -> None:
        """Keep a pending job off the nodes with a pending reason (JobHeldUser, Dependency)."""
        job = self._jobs[job_id]
        if job.state != "PENDING":
            raise ValueError(f"job {job_id} is {job.state}, not PENDING")
        job.reason = reason

    def forget(self, job_id: int) -> None:
        """Slurm drops an ended job's record (MinJobAge has passed)."""
        if not self._jobs[job_id].finished:
            raise ValueError(f"job {job_id} has not ended; Slurm forgets only ended jobs")
        del self._jobs[job_id]

    # -- inside --------------------------------------------------------------------------------

    def _now(self) -> int:
        return int(self.clock().timestamp())

    def _reachable(self, command: str) -> None:
        if self.unreachable:
            raise BackendUnavailable(
                "slurmctld is not answering (Unable to contact slurm controller)",
                argv=(command,),
                returncode=1,
            )

    def _known_node(self, node: str) -> FakeNode:
        found = self._nodes.get(node)
        if found is None:
            raise _refused(
                ("scontrol", "update", f"NodeName={node}"),
                "Invalid node name specified",
                prefix=SCONTROL_REFUSED,
            )
        return found

    def _end(self, job: FakeJob, state: str, exit_code: int) -> None:
        job.state, job.reason, job.exit_code, job.end_time = state, "None", exit_code, self._now()

    def _back_to_queue(self, job: FakeJob) -> None:
        # Slurm keeps a requeued job off the nodes for cred_expire + 1 s: reason BeginTime.
        job.state, job.reason, job.nodes = "PENDING", "BeginTime", ()
        job.start_time = job.end_time = job.exit_code = 0
        job.restart_count += 1

    def _free_for(self, job: FakeJob) -> list[str]:
        """The free usable nodes the job may run on, in the partition's order."""
        spec = self._partitions.get(job.partition)
        if spec is None:
            return []
        busy = {n for j in self._jobs.values() if j.state == "RUNNING" for n in j.nodes}
        opts = job.options
        allowed = opts.nodelist.split(",") if opts.nodelist else spec.nodes
        reserved = {node for node, _user in self.reservations.values()}
        mine = self.reservations.get(opts.reservation or "")
        return [
            n
            for n in allowed
            if n in spec.nodes
            and n not in busy
            and self._node(self._nodes[n], False).usable
            # A reserved node runs only its reservation's jobs.
            and (n not in reserved or (mine is not None and mine[0] == n))
        ]

    def _node(self, node: FakeNode, busy: bool) -> SlurmNode:
        state = "DOWN" if node.down else "ALLOCATED" if busy else "IDLE"
        return SlurmNode(
            name=node.name,
            address=node.address,
            hostname=node.hostname,
            port=node.port,
            state=state,
            flags=frozenset(node.flags),
            gres=node.gres,
            gpu_type=node.gpu_type if node.gpus else None,
            gpus=node.gpus,
            gpus_used=node.gpus if busy else 0,  # whole nodes: partitions are exclusive
            cpus=node.cpus,
            real_memory_mb=node.memory_mb,
            features=node.features,
            partitions=tuple(p for p, s in self._partitions.items() if node.name in s.nodes),
            reason=node.reason,
        )


def _refused(argv: Sequence[str], message: str, prefix: str = SBATCH_REFUSED) -> BackendError:
    """What CliBackend raises for a command that printed `message` on stderr and exited 1."""
    line = prefix + message
    return BackendError(f"{argv[0]} failed: {line}", argv=argv, returncode=1, stderr=line + "\n")


def _slurm_time(minutes: int | None) -> str:
    """A time limit as `scontrol show partition` prints it: UNLIMITED or [days-]HH:MM:SS."""
    if minutes is None:
        return "UNLIMITED"
    days, rest = divmod(minutes, 24 * 60)
    clock = f"{rest // 60:02d}:{rest % 60:02d}:00"
    return f"{days}-{clock}" if days else clock


def _partition(spec: PartitionSpec) -> SlurmPartition:
    words = (w.partition("=") for w in partition_conf.partition_words(spec, live=True))
    raw = {key: value for key, _, value in words}
    max_time = _slurm_time(spec.max_time_minutes)
    raw["MaxTime"] = max_time
    raw["DefaultTime"] = _slurm_time(spec.default_time_minutes or spec.max_time_minutes)
    raw["Nodes"] = raw.get("Nodes") or "(null)"
    return SlurmPartition(
        name=spec.name,
        nodes=spec.nodes,
        state=spec.state,
        priority_tier=spec.priority_tier,
        preempt_mode=spec.preempt_mode,
        grace_time_seconds=spec.grace_time_seconds,
        max_time=max_time,
        raw=raw,
    )
