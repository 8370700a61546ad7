"""Jobs: created from their plan and recorded first, then submitted and followed; terminate
and delete."""

from __future__ import annotations

import asyncio
import copy
import os
import re
import uuid
from typing import Any

import structlog

from adapter.auth import Principal
from adapter.backends.base import SlurmBackend
from adapter.clock import Clock, now
from adapter.clusters.service import ClusterKey, ClusterService
from adapter.errors import BackendError, Conflict, InvalidRequest, NotFound
from adapter.jobs.layout import JobLayout
from adapter.jobs.outcome import (
    error,
)
from adapter.jobs.spool import JobSpool
from adapter.jobs.submission import JobSubmitter
from adapter.jobs.tracking import JobTracker
from adapter.jobs.translate import PROCESS_COUNT_DEFAULTED, JobKey, NodeFacts, translate
from adapter.jobs.volumes import Volume
from adapter.metrics.events import MetricEvents
from adapter.models.jobs import JobCreateParameters
from adapter.records import (
    Cluster,
    Job,
    LayoutInfo,
    Operation,
    OperationKind,
    VolumeInfo,
)
from adapter.settings import Settings
from adapter.snapshot import Snapshot
from adapter.store import Store
from adapter.tenancy import Tenancy, missing_job, shared_groups
from adapter.unix import groups_of

log = structlog.get_logger(__name__)

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


class JobService:
    """Everything that changes jobs: creation (the plan recorded), terminate and delete here;
    submission (JobSubmitter) and following them in Slurm (JobTracker) in their own pieces.
    One lock: a job is never submitted twice."""

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
        self.spool = JobSpool(settings.clusters.spool_dir)
        self.submitter = JobSubmitter(
            store,
            backend,
            settings,
            self.spool,
            clock,
            finalize=lambda job, state, code, errors: self.tracker.finalize(
                job, state, code, errors
            ),
        )
        self.tracker = JobTracker(store, backend, self.spool, events, clock, self.submitter)

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
            self.submitter.in_flight.add(job.uid)
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
        await self.submitter.enqueue(job.uid)
        return job

    def start(self) -> None:
        self.submitter.start()

    async def stop(self) -> None:
        await self.submitter.stop()

    async def write_spool(self, job: Job, files: dict[str, str] | None = None) -> None:
        await self.submitter.write_spool(job, files)

    async def adopt(self, job: Job, slurm_id: int) -> None:
        await self.submitter.adopt(job, slurm_id)

    async def on_pass(self, snap: Snapshot) -> None:
        """The reconciler's pass: every unfinished job followed, under the jobs' lock."""
        async with self.lock:
            await self.tracker.on_pass(snap)

    # -- the plan ------------------------------------------------------------------------------

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
            await self.tracker.finish_deletion(job)
            return op

    async def _request_terminate(self, job: Job) -> None:
        job.terminate = True
        if job.slurm_id is None:
            self.tracker.finalize(job, "failed", None, [error("JobTerminated")])
            return
        if job.execution_state != "terminating":
            job.execution_state, job.execution_changed = "terminating", self.clock()
        self.store.put_job(job)
        try:
            await self.backend.cancel(job.slurm_id)
        except BackendError as exc:  # the reconciler cancels again on its next pass
            log.warning("cancel failed; will retry", job=job.name, error=str(exc))

    def _operation(self, kind: OperationKind, target: str, owner: str) -> Operation:
        op, new = self.store.begin_operation(kind, target, owner)
        if new and kind == "terminate-job":
            job = self.store.job_by_uid(target)
            if job is None or (job.final and job.provisioning_state != "deleting"):
                self.tracker.complete_operations(target)
        return op


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
