"""Recorded jobs into Slurm: the submitter tasks, each job's spool, its submission, and its
adoption when Slurm has it under an id bai did not see returned (DESIGN.md section 5).

A job is recorded before it is submitted (JobService.create), so a crash never submits it
twice: the reconciler adopts a job Slurm shows by its `bai:<uuid>` comment instead.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from datetime import datetime
from typing import Any

import structlog

from adapter import boundary
from adapter.backends.base import SlurmBackend
from adapter.backends.slurm_options import SlurmOptions
from adapter.clock import Clock
from adapter.jobs.outcome import error
from adapter.jobs.spool import JobSpool, volumes_of
from adapter.records import Cluster, FinalState, Job
from adapter.scripts.shell import export
from adapter.settings import Settings
from adapter.store import Store

log = structlog.get_logger(__name__)

Finalize = Callable[[Job, FinalState, "int | None", "list[dict[str, Any]]"], None]


class JobSubmitter:
    """Submits recorded jobs, several at once; `finalize` ends a job that cannot be."""

    def __init__(
        self,
        store: Store,
        backend: SlurmBackend,
        settings: Settings,
        spool: JobSpool,
        clock: Clock,
        finalize: Finalize,
    ) -> None:
        self.store = store
        self.backend = backend
        self.settings = settings
        self.spool = spool
        self.clock = clock
        self.finalize = finalize
        # Jobs the API is submitting now: the reconciler leaves them alone.
        self.in_flight: set[str] = set()
        # uid -> when sbatch returned; a snapshot taken before that cannot show the job yet.
        self.submitted: dict[str, datetime] = {}
        self._queue: asyncio.Queue[str] | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._binds: asyncio.Queue[tuple[Job, int]] | None = None

    async def enqueue(self, uid: str) -> None:
        """Hand a recorded job to the submitters (or submit it now, when none run)."""
        if self._queue is not None:
            self._queue.put_nowait(uid)
        else:
            await self.submit_recorded(uid)

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
                await self.submit_recorded(uid)
            except Exception:  # the reconciler retries a job left unsubmitted
                log.exception("submission failed", uid=uid)

    async def submit_recorded(self, uid: str) -> None:
        try:
            job = self.store.job_by_uid(uid)
            if job is None or job.final or job.slurm_id is not None:
                return
            cluster = self.store.cluster_by_uid(job.cluster_uid)
            if cluster is not None:
                await self.try_submit(job, cluster)
        finally:
            self.in_flight.discard(uid)

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

    async def try_submit(self, job: Job, cluster: Cluster) -> None:
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
            self.finalize(job, "failed", None, [error("SpoolInvalid", detail=str(exc))])
            return
        slurm_id = await self._submit(job)
        self.submitted[job.uid] = self.clock()
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
        self.submitted[job.uid] = self.clock()
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
