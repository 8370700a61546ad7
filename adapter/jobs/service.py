"""Jobs: validation, rendering, submission (record first, then sbatch), and the lifecycle."""

from __future__ import annotations

import asyncio
import copy
import os
import re
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import structlog

from adapter import boundary
from adapter.auth import Principal
from adapter.backends.base import SlurmBackend, SlurmJob
from adapter.backends.slurm_options import SlurmOptions
from adapter.clock import Clock, now
from adapter.clusters.service import ClusterKey, ClusterService
from adapter.errors import BackendError, Conflict, InvalidRequest, NotFound
from adapter.jobs.launch import PER_TASK_OUTPUT
from adapter.jobs.layout import JobLayout
from adapter.jobs.outcome import (
    ExecutionLogInvalid,
    Outcome,
    decide,
    error,
    invalid_log_outcome,
    live_state,
    parse_execution_log,
)
from adapter.jobs.spool import LOG_CAP, NOTE_CAP, JobSpool, volumes_of
from adapter.jobs.translate import PROCESS_COUNT_DEFAULTED, JobKey, NodeFacts, translate
from adapter.jobs.volumes import Volume
from adapter.metrics.events import MetricEvents
from adapter.models.jobs import JobCreateParameters
from adapter.records import (
    Cluster,
    ExecutionState,
    FinalState,
    Job,
    LayoutInfo,
    Operation,
    OperationKind,
    VolumeInfo,
)
from adapter.sbatch.values import parse_array
from adapter.scripts.shell import export
from adapter.settings import Settings
from adapter.snapshot import Snapshot
from adapter.store import Store
from adapter.tenancy import Tenancy, missing_job, shared_groups
from adapter.unix import groups_of

log = structlog.get_logger(__name__)

# A `bai sbatch` job its client never confirmed nor Slurm shows: the client stopped first.
UNCONFIRMED_AFTER = timedelta(minutes=10)

CLUSTER_ID = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.BatchAI/"
    r"workspaces/(?P<ws>[^/]+)/clusters/(?P<name>[^/]+)/?$",
    re.IGNORECASE,
)


def job_labels(cluster: Cluster) -> dict[str, str]:
    """A job's metric labels, kept with the job: the cluster may be gone when it finishes."""
    return {
        "workspace": cluster.ws,
        "cluster": cluster.name,
        "partition": cluster.partition,
        "node_type": cluster.node_type,
        "priority": cluster.priority,
    }


def layout_info(layout: JobLayout) -> LayoutInfo:
    """A job's layout as its record keeps it."""
    return LayoutInfo(
        segment=layout.segment,
        job_temp=layout.job_temp,
        job_temp_dir=layout.job_temp_dir,
        job_mount_root=layout.job_mount_root,
        mount_root=layout.mount_root,
        spool=layout.spool,
        shared_temp=layout.shared_temp,
        stdouterr=layout.stdouterr,
        outputs=layout.outputs,
        inputs=layout.inputs,
    )


def volume_info(v: Volume) -> VolumeInfo:
    """A resolved volume as its job's record keeps it (spool.volumes_of reads it back)."""
    return VolumeInfo(
        label=v.label,
        kind=v.kind,
        source=v.source,
        options=v.options,
        mountpoint=v.mountpoint,
        adapter_path=v.adapter_path,
        remote=dict(v.remote or {}),
        remote_name=v.remote_name,
    )


def host_of(snap: Snapshot, node: str) -> str:
    """The short host name of a node (what Slurm's `%N` gives: slurmd's host, which is the
    node's name on most sites, and one host's for every node of the dev cluster)."""
    found = snap.nodes.get(node)
    return (found.hostname if found and found.hostname else node).split(".", 1)[0]


def stderr_of(job: Job) -> str:
    """Where a job.json job's processes wrote their standard error ('' for `bai sbatch` jobs,
    whose files are the user's own choice): stderr.txt, or one per task."""
    if job.info.get("kind") == "sbatch":
        return ""
    per_task = job.info["toolType"] in PER_TASK_OUTPUT
    return f"{job.info['layout']['stdouterr']}/{'stderr-*.txt' if per_task else 'stderr.txt'}"


def marker(comment: str) -> str:
    """bai's mark in a Slurm job's comment (`bai:<uuid>`, then a `bai sbatch` user's own)."""
    return comment.split(" ", 1)[0]


def human(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes % (24 * 60) == 0:
        days = minutes // (24 * 60)
        return f"{days} day{'s' if days != 1 else ''}" if days != 1 else "24 hours"
    if minutes % 60 == 0:
        return f"{minutes // 60} hours"
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


class JobService:
    """Everything that changes jobs. One lock: a job is never submitted twice."""

    def __init__(
        self,
        store: Store,
        backend: SlurmBackend,
        settings: Settings,
        clusters: ClusterService,
        events: MetricEvents,
        clock: Clock = now,
    ) -> None:
        self.clock = clock
        self.events = events
        self.store = store
        self.tenancy = Tenancy(store)
        self.backend = backend
        self.settings = settings
        self.clusters = clusters
        self.lock = asyncio.Lock()
        self._in_flight: set[str] = set()
        # uid -> when sbatch returned; a snapshot taken before that cannot show the job yet.
        self._submitted: dict[str, datetime] = {}
        self._queue: asyncio.Queue[str] | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._binds: asyncio.Queue[tuple[Job, int]] | None = None
        self.spool = JobSpool(settings.clusters.spool_dir)

    # -- reads ---------------------------------------------------------------------------------

    def get(self, key: JobKey) -> Job:
        job = self.store.job(key.sub, key.rg, key.ws, key.exp, key.name)
        if job is None:
            raise missing_job(key.rg, key.ws, key.exp, key.name)
        return job

    def held_nodes(self, cluster: Cluster) -> int:
        """Nodes wanted by jobs bai holds because the cluster is smaller than they need."""
        return sum(
            j.properties["nodeCount"]
            for j in self.store.active_jobs()
            if j.cluster_uid == cluster.uid
            and j.slurm_id is None
            and not j.terminate
            and j.info.get("kind") != "sbatch"  # its client submits it, at once
        )

    # -- create --------------------------------------------------------------------------------

    async def create(self, key: JobKey, body: JobCreateParameters, principal: Principal) -> Job:
        experiment = self.store.experiment(key.sub, key.rg, key.ws, key.exp)
        if experiment is None or experiment.state == "deleting":
            raise NotFound(
                f"experiment {key.rg}/{key.ws}/{key.exp} does not exist; create it first",
                target="experimentName",
            )
        props = body.properties
        wire = body.wire()["properties"]
        cluster = self._cluster(props.cluster.id, principal)
        async with self.lock:
            existing = self.store.job(key.sub, key.rg, key.ws, key.exp, key.name)
            if existing is not None:
                if _without_secrets(wire) == existing.properties and not existing.final:
                    return existing
                raise Conflict(
                    f"job {key} already exists; jobs cannot be changed, delete it or "
                    "use another name",
                    target="jobName",
                )
            job = self._build(key, body, wire, cluster, principal)
            self.store.put_job(job)  # recorded before sbatch: a crash cannot submit it twice
            # The submitters take it from here; the reconciler leaves in-flight jobs alone.
            self._in_flight.add(job.uid)
        log.info(
            "job recorded",
            job=str(key),
            uid=job.uid,
            cluster=cluster.name,
            tool=job.info["toolType"],
            nodes=props.node_count,
        )
        if self.settings.jobs.crash_point == "after_record":
            os._exit(3)
        if self._queue is not None:
            self._queue.put_nowait(job.uid)
        else:
            await self._submit_recorded(job.uid)
        return job

    # -- submitting ----------------------------------------------------------------------------

    def start(self) -> None:
        """Submitter tasks: jobs are recorded by the API and sbatched by these, several at once
        (each sbatch waits on slurmctld; running a few side by side beats a sequential loop)."""
        self._queue, self._binds = asyncio.Queue(), asyncio.Queue()
        self._workers = [
            asyncio.create_task(self._submitter(), name=f"submitter-{i}")
            for i in range(self.settings.jobs.submitters)
        ]
        self._workers.append(asyncio.create_task(self._binder(), name="binder"))

    async def stop(self) -> None:
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers, self._queue, self._binds = [], None, None

    async def _submitter(self) -> None:
        assert self._queue is not None
        while True:
            uid = await self._queue.get()
            try:
                await self._submit_recorded(uid)
            except Exception:  # the reconciler retries a job left unsubmitted
                log.exception("submission failed", uid=uid)

    async def _submit_recorded(self, uid: str) -> None:
        try:
            job = self.store.job_by_uid(uid)
            if job is None or job.final or job.slurm_id is not None:
                return
            cluster = self.store.cluster_by_uid(job.cluster_uid)
            if cluster is not None:
                await self._try_submit(job, cluster)
        finally:
            self._in_flight.discard(uid)

    def _share_group(self, key: JobKey, user: str) -> str | None:
        """The group that reads the job's files: the first (by name) of its workspace's groups
        its user is in; mode bits name one group, the API serves every member."""
        ws = self.store.workspace(key.sub, key.rg, key.ws)
        mine = groups_of(user)
        return next((g for g in shared_groups(ws.tags) if g in mine), None) if ws else None

    def _cluster(self, cluster_id: str, principal: Principal) -> Cluster:
        """The job's cluster: one of a workspace its user sees (another's is a missing one)."""
        m = CLUSTER_ID.match(cluster_id)
        if not m:
            raise InvalidRequest(
                f"properties.cluster.id {cluster_id!r} is not a cluster id (/subscriptions/<sub>/"
                "resourceGroups/<rg>/providers/Microsoft.BatchAI/workspaces/<ws>/clusters/<name>)",
                target="properties.cluster.id",
            )
        key = ClusterKey(m["sub"], m["rg"], m["ws"], m["name"])
        cluster = self.store.cluster(key.sub, key.rg, key.ws, key.name)
        if (
            cluster is None
            or cluster.provisioning_state == "deleting"
            or not self.tenancy.may_use(principal, cluster)
        ):
            raise InvalidRequest(
                f"properties.cluster.id: cluster {key} does not exist",
                target="properties.cluster.id",
            )
        return cluster

    def node_facts(self, cluster: Cluster) -> NodeFacts:
        """The cluster's node type and its nodes' addresses, as the last pass saw them."""
        snap = self.clusters.snapshot()
        node_type = snap.types.get(cluster.node_type) if snap else None
        if snap is None or node_type is None:
            return NodeFacts(node_type)
        return NodeFacts(node_type, {n: snap.nodes[n].address for n in node_type.nodes})

    def _build(
        self,
        key: JobKey,
        body: JobCreateParameters,
        wire: dict[str, Any],
        cluster: Cluster,
        principal: Principal,
    ) -> Job:
        """The job's record: its plan (translate) and what the API shows of it."""
        props = body.properties
        plan = translate(
            key,
            props,
            wire,
            cluster,
            self.node_facts(cluster),
            self.settings,
            uid=str(uuid.uuid4()),
            user=principal.user,
            share_group=self._share_group(key, principal.user),
        )
        stored = _without_secrets(wire)
        for toolkit in PROCESS_COUNT_DEFAULTED:
            if stored.get(toolkit) is not None:
                stored[toolkit].setdefault("processCount", props.node_count)
        t = self.clock()
        return Job(
            uid=plan.uid,
            sub=key.sub,
            rg=key.rg,
            ws=key.ws,
            exp=key.exp,
            name=key.name,
            cluster_uid=cluster.uid,
            owner=principal.user,
            properties=stored,
            secrets={s.name: s.value or "" for s in props.secrets},
            script=plan.script,
            info={
                "toolType": plan.tool,
                "segment": plan.segment,
                "layout": layout_info(plan.layout),
                "capped": plan.capped,
                "limitSeconds": int(plan.limit.total_seconds()),
                "capSeconds": int(plan.cap.total_seconds()),
                "labels": job_labels(cluster),
                "volumes": [volume_info(v) for v in plan.volumes],
                "slurm": plan.options.to_json(),  # what submits it, after a restart too
            },
            created=t,
            provisioning_state="succeeded",
            provisioning_changed=t,
            execution_state="queued",
            execution_changed=t,
        )

    async def write_spool(self, job: Job, files: dict[str, str] | None = None) -> None:
        """The job's spool (its user's), its root plan, its secrets and rclone config, and
        `files` (a `bai sbatch` job's script)."""
        volumes = volumes_of(job)
        files = dict(files or {})
        remotes = {v.remote_name: v.remote for v in volumes if v.kind == "rclone" and v.remote}
        if remotes:
            files["rclone.conf"] = "".join(
                f"[{name}]\n" + "".join(f"{k} = {v}\n" for k, v in cfg.items()) + "\n"
                for name, cfg in remotes.items()
            )
        if job.secrets:
            files["secrets.env"] = "".join(f"{export(k, v)}\n" for k, v in job.secrets.items())
        crash = self.settings.jobs.crash_point == "mid_spool_write"
        await asyncio.to_thread(self.spool.lay_out, job, files, crash_midway=crash)

    async def _try_submit(self, job: Job, cluster: Cluster) -> None:
        """sbatch the job if its cluster has the nodes for it now; else bai holds it."""
        size = sum(1 for r in cluster.nodes.values() if r.state != "leaving")
        if size < job.properties["nodeCount"]:
            log.info(
                "job held until the cluster grows",
                job=job.name,
                nodes=size,
                needed=job.properties["nodeCount"],
            )
            return
        # Written here, not by the API: the answer does not wait for the disk, and a job left
        # unsubmitted by a crash gets its spool when the reconciler submits it.
        try:
            await self.write_spool(job)
        except boundary.UnsafePath as exc:  # the user's own files are in the way: say so, once
            log.warning("job spool refused", job=job.name, uid=job.uid, reason=str(exc))
            self._finalize(job, "failed", None, [error("SpoolInvalid", detail=str(exc))])
            return
        slurm_id = await self._submit(job)
        self._submitted[job.uid] = self.clock()
        if self.settings.jobs.crash_point == "after_submit":
            os._exit(3)
        # Only the id is written: a terminate may have come in (and been recorded) meanwhile.
        job.slurm_id = slurm_id
        terminate = self.store.set_slurm_id(job.uid, slurm_id)
        await self._bind(job, slurm_id)
        log.info("job submitted", job=job.name, uid=job.uid, slurm_id=slurm_id)
        if terminate:
            await self.backend.cancel(slurm_id)

    async def _submit(self, job: Job) -> int:
        """Submit the job's record: its options, kept as data for in-process submission, and
        its script, whose #SBATCH lines are those options."""
        recorded = job.info.get("slurm")
        if recorded is None:  # recorded before bai kept a job's options: its script has them
            return await self.backend.submit(job.script, user=job.owner)
        options = SlurmOptions.from_json(recorded)
        return await self.backend.submit_job(options, job.script, user=job.owner)

    async def adopt(self, job: Job, slurm_id: int) -> None:
        """Slurm has the job under this id: record it, and name a `bai sbatch` job after it
        (the id sbatch printed is the name its user knows)."""
        job.slurm_id = slurm_id
        self._submitted[job.uid] = self.clock()
        terminate = self.store.set_slurm_id(job.uid, slurm_id)
        if job.info.get("kind") == "sbatch" and self.store.rename_job(job.uid, str(slurm_id)):
            job.name = str(slurm_id)
        await self._bind(job, slurm_id)
        if terminate:
            await self.backend.cancel(slurm_id)

    async def _bind(self, job: Job, slurm_id: int) -> None:
        """The clear secrets leave the store (the job's 0600 secrets file is what it reads from
        now on), and the root plan is bound to the Slurm job: by the binder when it runs."""
        if job.secrets:
            self.store.clear_job_secrets(job.uid)
            job.secrets = {}
        if self._binds is not None:
            self._binds.put_nowait((job, slurm_id))
        else:
            await asyncio.to_thread(self._bind_all, [(job, slurm_id)])

    async def _binder(self) -> None:
        """Binds root plans to their Slurm jobs off the submitters' path: all those submitted
        since its last turn, in one thread hop (milliseconds after sbatch answered)."""
        assert self._binds is not None
        while True:
            batch = [await self._binds.get()]
            while not self._binds.empty():
                batch.append(self._binds.get_nowait())
            await asyncio.to_thread(self._bind_all, batch)

    def _bind_all(self, batch: list[tuple[Job, int]]) -> None:
        for job, slurm_id in batch:
            try:
                self.spool.bind(job, slurm_id)
            except Exception:  # the uid check still holds; the job runs
                log.exception("plan not bound to its Slurm job", uid=job.uid, slurm_id=slurm_id)

    # -- terminate and delete ------------------------------------------------------------------

    async def terminate(self, key: JobKey, owner: str) -> Operation | None:
        """Queued or running -> failed (via terminating); a finished job is left as it is."""
        async with self.lock:
            job = self.get(key)
            if job.final:
                return None
            await self._request_terminate(job)
            return self._operation("terminate-job", job.uid, owner)

    async def delete(self, key: JobKey, owner: str) -> Operation:
        async with self.lock:
            job = self.get(key)
            if not job.final:
                await self._request_terminate(job)
            job.provisioning_state, job.provisioning_changed = "deleting", self.clock()
            self.store.put_job(job)
            op = self._operation("delete-job", job.uid, owner)
            await self._finish_deletion(job)
            return op

    async def _request_terminate(self, job: Job) -> None:
        job.terminate = True
        if job.slurm_id is None:
            self._finalize(job, "failed", None, [error("JobTerminated")])
            return
        if job.execution_state != "terminating":
            job.execution_state, job.execution_changed = "terminating", self.clock()
        self.store.put_job(job)
        try:
            await self.backend.cancel(job.slurm_id)
        except BackendError as exc:  # the reconciler cancels again on its next pass
            log.warning("cancel failed; will retry", job=job.name, error=str(exc))

    async def _finish_deletion(self, job: Job) -> None:
        if job.provisioning_state != "deleting" or not job.final:
            return
        if not await asyncio.to_thread(self.spool.remove, job):
            log.warning("job spool left in part (a mount or a swapped directory)", uid=job.uid)
        self.store.delete_job(job.uid)
        self._complete_operations(job.uid)
        log.info("job deleted", job=job.name, uid=job.uid)

    def _operation(self, kind: OperationKind, target: str, owner: str) -> Operation:
        op, new = self.store.begin_operation(kind, target, owner)
        if new and kind == "terminate-job":
            job = self.store.job_by_uid(target)
            if job is None or (job.final and job.provisioning_state != "deleting"):
                self._complete_operations(target)
        return op

    def _complete_operations(self, target: str) -> None:
        self.store.succeed_operations(target)

    # -- reconciling ---------------------------------------------------------------------------

    async def on_pass(self, snap: Snapshot) -> None:
        """Follow every unfinished job in Slurm; submit held jobs whose cluster grew."""
        async with self.lock:
            by_comment = {marker(j.comment): j for j in snap.jobs if j.comment.startswith("bai:")}
            clusters = {c.uid: c for c in self.store.clusters()}
            for job in self.store.active_jobs():
                try:
                    await self._follow(job, snap, by_comment, clusters)
                except BackendError as exc:
                    log.warning("job follow-up failed", job=job.name, error=str(exc))
                except Exception:  # one job's trouble never stops the others being followed
                    log.exception("job follow-up crashed", job=job.name, uid=job.uid)

    async def _follow(
        self,
        job: Job,
        snap: Snapshot,
        by_comment: Mapping[str, SlurmJob],
        clusters: Mapping[str, Cluster],
    ) -> None:
        if job.uid in self._in_flight:
            return  # the API is submitting it right now
        if job.final:
            await self._finish_deletion(job)
            return
        cluster = clusters.get(job.cluster_uid)
        if job.slurm_id is None:
            found = by_comment.get(f"bai:{job.uid}")
            if found is not None and found.user == job.owner:  # submitted, not yet recorded:
                # adopt (never resubmit); another user's job naming this one is not it
                await self.adopt(job, found.array_job_id or found.job_id)
                log.info("job adopted", job=job.name, slurm_id=job.slurm_id)
            elif job.info.get("kind") == "sbatch":  # its client submits it, never bai
                if self.clock() - job.created > UNCONFIRMED_AFTER:
                    self._finalize(job, "failed", None, [error("SubmissionNotConfirmed")])
                return
            elif any(await self._read_log(job)):  # it ran (a log, even a bad one), Slurm forgot
                await self._conclude(job, None, cluster)  # it ran and Slurm forgot it
                return
            elif cluster is None or cluster.provisioning_state == "deleting":
                self._finalize(job, "failed", None, [error("ClusterDeleted")])
                return
            else:
                await self._try_submit(job, cluster)
                return
        sb = job.info.get("sbatch")
        array = sb.get("array") if sb is not None else None
        if array:
            await self._follow_array(job, array, snap, cluster)
            return
        slurm = next((j for j in snap.jobs if j.job_id == job.slurm_id), None)
        submitted = self._submitted.get(job.uid)
        if slurm is None and submitted is not None and submitted >= snap.taken:
            return  # sbatched after this snapshot was taken: not missing, just not seen yet
        if slurm is not None and job.terminate and not slurm.finished:
            await self.backend.cancel(slurm.job_id)
        if slurm is not None and not slurm.finished:
            await self._track(job, slurm, snap)
            return
        await self._conclude(job, slurm, cluster)

    async def _track(self, job: Job, slurm: SlurmJob, snap: Snapshot) -> None:
        changed = False
        state = live_state(slurm.state)
        if job.terminate:
            state = "terminating"
        if state != job.execution_state:
            job.execution_state, job.execution_changed, changed = state, self.clock(), True
        if slurm.restart_count > job.restarts:
            await self._count_requeues(job, slurm.restart_count - job.restarts)
            job.restarts, changed = slurm.restart_count, True
        if state == "running" and slurm.start_time and slurm.start_time != job.start_time:
            self._count_start(job, slurm)
            job.start_time, job.nodes, changed = slurm.start_time, list(slurm.nodes), True
            sb = job.info.get("sbatch")
            if sb is not None:  # the host name `%N` of -o/-e stands for
                sb["host"] = host_of(snap, slurm.batch_host or job.nodes[0])
                self.store.set_job_info(job.uid, job.info)
        if changed:
            self.store.put_job(job)

    async def _follow_array(
        self, job: Job, array: str, snap: Snapshot, cluster: Cluster | None
    ) -> None:
        """A job array is one bai job: each task's state and exit code are kept in its info,
        and the job ends when every task has (succeeded only if every task did)."""
        records = [j for j in snap.jobs if j.array_job_id == job.slurm_id]
        submitted = self._submitted.get(job.uid)
        if not records and submitted is not None and submitted >= snap.taken:
            return  # sbatched after this snapshot was taken
        sb = job.info["sbatch"]
        tasks = sb["tasks"]
        before = copy.deepcopy(tasks)
        pending: set[int] = set()
        for rec in records:
            if job.terminate and not rec.finished:
                await self.backend.cancel(rec.job_id)
            if rec.array_task_id is None:  # the tasks not started yet, as one record
                if rec.array_pending and not rec.finished:
                    pending |= set(parse_array(rec.array_pending).indices)
                elif rec.array_pending:  # cancelled before they started
                    why = [error("JobTerminated" if job.terminate else "JobCancelled")]
                    for index in parse_array(rec.array_pending).indices:
                        tasks[str(index)] = {"state": "failed", "exitCode": None, "errors": why}
                continue
            task = tasks.setdefault(str(rec.array_task_id), {})
            node = rec.batch_host or (rec.nodes or ("",))[0]
            task.update({"jobId": rec.job_id, "node": node, "host": host_of(snap, node)})
            task["restarts"] = rec.restart_count
            if rec.start_time is not None and "start" not in task:
                task["start"] = rec.start_time.isoformat()
            if not rec.finished:
                task["state"] = live_state(rec.state)
                continue
            if task.get("state") not in {"succeeded", "failed"}:
                outcome = await self._task_outcome(job, rec.array_task_id, rec, cluster)
                task.update({"state": outcome.state, "exitCode": outcome.exit_code})
                task["errors"] = outcome.errors
        seen = {rec.array_task_id for rec in records}
        for index in parse_array(array).indices:
            task = tasks.setdefault(str(index), {"state": "queued"})
            gone = index not in seen and index not in pending
            if gone and task.get("state") not in {"succeeded", "failed"}:
                # Slurm has forgotten it, or never ran it (cancelled, its partition gone): its
                # own log says how it ended, if it ran at all.
                outcome = await self._task_outcome(job, index, None, cluster)
                task.update({"state": outcome.state, "exitCode": outcome.exit_code})
                task["errors"] = outcome.errors
        restarts = sum(int(t.get("restarts", 0)) for t in tasks.values())
        if restarts > job.restarts:
            await self._count_requeues(job, restarts - job.restarts)
            job.restarts = restarts
        states = [t.get("state") for t in tasks.values()]
        starts = [datetime.fromisoformat(t["start"]) for t in tasks.values() if "start" in t]
        if starts and job.start_time is None:
            job.start_time = min(starts)
            self.events.observe(
                "bai_job_queue_wait_seconds",
                job.info["labels"],
                (job.start_time - job.created).total_seconds(),
            )
        job.nodes = sorted({t["node"] for t in tasks.values() if t.get("node")})
        if tasks != before:
            self.store.set_job_info(job.uid, job.info)
        if all(state in {"succeeded", "failed"} for state in states):
            failed = sorted((int(i) for i, t in tasks.items() if t["state"] == "failed"))
            codes = [t.get("exitCode") for t in tasks.values()]
            worst = max((c for c in codes if c is not None), default=None)
            if not failed:
                await self._end(job, None, Outcome("succeeded", 0))
                return
            first = tasks[str(failed[0])].get("errors") or []
            shown = ",".join(str(i) for i in failed[:20]) + ("..." if len(failed) > 20 else "")
            highest = f"; the highest exit code was {worst}" if worst is not None else ""
            errors = [error("ArrayTasksFailed", tasks=shown, exit=highest), *first[:1]]
            await self._end(job, None, Outcome("failed", worst, errors))
            return
        state: ExecutionState = "running" if "running" in states else "queued"
        if job.terminate:
            state = "terminating"
        if state != job.execution_state:
            job.execution_state, job.execution_changed = state, self.clock()
        self.store.put_job(job)

    async def _task_outcome(
        self, job: Job, index: int, rec: SlurmJob | None, cluster: Cluster | None
    ) -> Outcome:
        events, problem = await self._read_log(job, f"execution.{index}.log")
        if problem:
            return invalid_log_outcome(rec, problem)
        return self._decide(job, rec, events, cluster) or Outcome("failed", -1, [error("JobLost")])

    async def _count_requeues(self, job: Job, times: int) -> None:
        labels = job.info["labels"]
        self.events.inc("bai_job_requeues", labels, times)
        # A preempted run logged the USR1 notice Slurm sends at preemption (low priority only).
        if labels["priority"] == "lowpriority" and any(
            e.get("event") == "notice" for e in (await self._read_log(job))[0]
        ):
            self.events.inc("bai_job_preemptions", labels, times)

    def _count_start(self, job: Job, slurm: SlurmJob) -> None:
        if job.start_time is None and slurm.start_time is not None:
            wait = (slurm.start_time - job.created).total_seconds()
            self.events.observe("bai_job_queue_wait_seconds", job.info["labels"], wait)

    async def _read_log(
        self, job: Job, name: str = "execution.log"
    ) -> tuple[list[dict[str, Any]], str]:
        """The events of the job's last run, and what is wrong with its log ('' if nothing)."""
        try:
            text = await asyncio.to_thread(self.spool.read, job, name, LOG_CAP)
            return parse_execution_log(text or ""), ""
        except boundary.UnsafePath as exc:
            return [], f"{name} {exc.reason}"
        except ExecutionLogInvalid as exc:
            return [], f"{name} {exc}"
        except OSError as exc:
            return [], f"{name} could not be read ({exc.strerror})"

    async def _mount_error(self, job: Job) -> str:
        try:
            return await asyncio.to_thread(self.spool.read, job, "mount-error", NOTE_CAP) or ""
        except (boundary.UnsafePath, OSError) as exc:
            return f"(bai did not read the job's mount-error file: {exc})"

    async def _conclude(self, job: Job, slurm: SlurmJob | None, cluster: Cluster | None) -> None:
        if slurm is not None and not slurm.finished:
            return
        events, problem = await self._read_log(job)
        if problem:
            log.warning("job's execution log refused", uid=job.uid, problem=problem)
            await self._end(job, slurm, invalid_log_outcome(slurm, problem))
            return
        mount_error = await self._mount_error(job)
        outcome = self._decide(job, slurm, events, cluster, (mount_error or "").strip())
        if outcome is not None:
            await self._end(job, slurm, outcome)

    def _decide(
        self,
        job: Job,
        slurm: SlurmJob | None,
        events: list[dict[str, Any]],
        cluster: Cluster | None,
        mount_error: str = "",
    ) -> Outcome | None:
        """`decide` with what the job's record says of its cap and limit (a job, or one task
        of an array)."""
        return decide(
            slurm,
            events,
            terminated=job.terminate,
            cluster_gone=cluster is None or cluster.provisioning_state == "deleting",
            capped=job.info["capped"],
            cap=human(timedelta(seconds=job.info["capSeconds"])),
            limit=human(timedelta(seconds=job.info["limitSeconds"] or 0)),
            mount_error=mount_error,
            stderr=stderr_of(job),
        )

    async def _end(self, job: Job, slurm: SlurmJob | None, outcome: Outcome) -> None:
        if slurm is not None:
            if slurm.restart_count > job.restarts:
                await self._count_requeues(job, slurm.restart_count - job.restarts)
            job.restarts = slurm.restart_count
            self._count_start(job, slurm)
            job.start_time = job.start_time or slurm.start_time
            job.end_time = slurm.end_time
            job.nodes = job.nodes or list(slurm.nodes)
        self._finalize(job, outcome.state, outcome.exit_code, outcome.errors)
        # Secrets and the plans are not needed any more; the execution log stays for the record.
        await asyncio.to_thread(self.spool.forget_secrets, job)
        await self._finish_deletion(job)

    def _finalize(
        self, job: Job, state: FinalState, exit_code: int | None, errors: list[dict[str, Any]]
    ) -> None:
        t = self.clock()
        self._submitted.pop(job.uid, None)
        job.execution_state, job.execution_changed = state, t
        job.exit_code, job.errors = exit_code, errors
        job.end_time = job.end_time or t
        self.store.put_job(job)
        if job.provisioning_state != "deleting":
            self._complete_operations(job.uid)
        labels = job.info["labels"]
        self.events.inc("bai_jobs_finished", {**labels, "outcome": state})
        for e in errors:
            self.events.inc("bai_job_failures", {**labels, "code": e["code"]})
            if e["code"] == "LowPriorityTimeLimitExceeded":
                self.events.inc("bai_jobs_cap_killed", labels)
        if job.start_time is not None:
            run = (job.end_time - job.start_time).total_seconds()
            self.events.observe("bai_job_run_seconds", labels, run)
        log.info(
            "job finished",
            job=job.name,
            uid=job.uid,
            state=state,
            exit_code=exit_code,
            errors=[e["code"] for e in errors],
        )


def _without_secrets(wire: dict[str, Any]) -> dict[str, Any]:
    props = copy.deepcopy(wire)
    for item in props.get("secrets") or []:
        item["value"] = None
    for kind in ("azureFileShares", "azureBlobFileSystems"):
        for volume in (props.get("mountVolumes") or {}).get(kind) or []:
            if (volume.get("credentials") or {}).get("accountKey") is not None:
                volume["credentials"]["accountKey"] = None
    registry = (props.get("containerSettings") or {}).get("imageSourceRegistry") or {}
    if (registry.get("credentials") or {}).get("password") is not None:
        registry["credentials"]["password"] = None
    return props
