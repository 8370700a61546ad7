"""Following bai's jobs in Slurm: each reconciler pass turns what Slurm and a job's execution
log say into its Batch AI state, counts requeues and preemptions, and ends it with its outcome
(adapter/jobs/outcome.py holds the one table from Slurm states to Batch AI states and errors).
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import structlog

from adapter import boundary
from adapter.backends.base import SlurmBackend, SlurmJob
from adapter.clock import Clock
from adapter.errors import BackendError
from adapter.jobs.launch import PER_TASK_OUTPUT
from adapter.jobs.outcome import (
    ExecutionLogInvalid,
    Outcome,
    decide,
    error,
    execution_runs,
    invalid_log_outcome,
    live_state,
    parse_execution_log,
    preempted_runs,
)
from adapter.jobs.spool import LOG_CAP, NOTE_CAP, JobSpool
from adapter.jobs.submission import JobSubmitter
from adapter.metrics.events import MetricEvents
from adapter.records import Cluster, ExecutionState, FinalState, Job
from adapter.sbatch.values import parse_array
from adapter.snapshot import Snapshot
from adapter.store import Store

log = structlog.get_logger(__name__)

# A `bai sbatch` job its client never confirmed nor Slurm shows: the client stopped first.
UNCONFIRMED_AFTER = timedelta(minutes=10)


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


class JobTracker:
    """Follows every unfinished job through the reconciler's passes, and ends jobs."""

    def __init__(
        self,
        store: Store,
        backend: SlurmBackend,
        spool: JobSpool,
        events: MetricEvents,
        clock: Clock,
        submitter: JobSubmitter,
    ) -> None:
        self.store = store
        self.backend = backend
        self.spool = spool
        self.events = events
        self.clock = clock
        self.submitter = submitter

    async def on_pass(self, snap: Snapshot) -> None:
        """Follow every unfinished job in Slurm; submit held jobs whose cluster grew (the
        caller holds the jobs' lock)."""
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
        if job.uid in self.submitter.in_flight:
            return  # the API is submitting it right now
        if job.final:
            await self.finish_deletion(job)
            return
        cluster = clusters.get(job.cluster_uid)
        if job.slurm_id is None:
            found = by_comment.get(f"bai:{job.uid}")
            if found is not None and found.user == job.owner:  # submitted, not yet recorded:
                # adopt (never resubmit); another user's job naming this one is not it
                await self.submitter.adopt(job, found.array_job_id or found.job_id)
                log.info("job adopted", job=job.name, slurm_id=job.slurm_id)
            elif job.info.get("kind") == "sbatch":  # its client submits it, never bai
                if self.clock() - job.created > UNCONFIRMED_AFTER:
                    self.finalize(job, "failed", None, [error("SubmissionNotConfirmed")])
                return
            elif any(await self._read_log(job)):  # it ran (a log, even a bad one), Slurm forgot
                await self._conclude(job, None, cluster)  # it ran and Slurm forgot it
                return
            elif cluster is None or cluster.provisioning_state == "deleting":
                self.finalize(job, "failed", None, [error("ClusterDeleted")])
                return
            else:
                await self.submitter.try_submit(job, cluster)
                return
        sb = job.info.get("sbatch")
        array = sb.get("array") if sb is not None else None
        if array:
            await self._follow_array(job, array, snap, cluster)
            return
        slurm = next((j for j in snap.jobs if j.job_id == job.slurm_id), None)
        submitted = self.submitter.submitted.get(job.uid)
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
            await self._count_requeues(job, job.restarts, slurm.restart_count)
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
        submitted = self.submitter.submitted.get(job.uid)
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
            before_restarts = int(task.get("restarts", 0))
            if rec.restart_count > before_restarts:
                log_name = f"execution.{rec.array_task_id}.log"
                await self._count_requeues(job, before_restarts, rec.restart_count, log_name)
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
        job.restarts = sum(int(t.get("restarts", 0)) for t in tasks.values())
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

    async def _count_requeues(
        self, job: Job, before: int, after: int, name: str = "execution.log"
    ) -> None:
        """Slurm requeued the job (or an array task, whose log is `name`) after - before times;
        the runs among them that logged bai's USR1 notice were preempted (low priority only).
        The runs' events stay in the log, so the requeued run having started already (and
        written its own) loses none."""
        labels = job.info["labels"]
        self.events.inc("bai_job_requeues", labels, after - before)
        if labels["priority"] != "lowpriority":
            return
        try:
            text = await asyncio.to_thread(self.spool.read, job, name, LOG_CAP)
            preempted = preempted_runs(execution_runs(text or ""), before, after)
        except (boundary.UnsafePath, ExecutionLogInvalid, OSError):
            return  # a log bai cannot use says nothing of preemption
        if preempted:
            self.events.inc("bai_job_preemptions", labels, preempted)

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
                await self._count_requeues(job, job.restarts, slurm.restart_count)
            job.restarts = slurm.restart_count
            self._count_start(job, slurm)
            job.start_time = job.start_time or slurm.start_time
            job.end_time = slurm.end_time
            job.nodes = job.nodes or list(slurm.nodes)
        self.finalize(job, outcome.state, outcome.exit_code, outcome.errors)
        # Secrets and the plans are not needed any more; the execution log stays for the record.
        await asyncio.to_thread(self.spool.forget_secrets, job)
        await self.finish_deletion(job)

    def finalize(
        self, job: Job, state: FinalState, exit_code: int | None, errors: list[dict[str, Any]]
    ) -> None:
        t = self.clock()
        self.submitter.submitted.pop(job.uid, None)
        job.execution_state, job.execution_changed = state, t
        job.exit_code, job.errors = exit_code, errors
        job.end_time = job.end_time or t
        self.store.put_job(job)
        if job.provisioning_state != "deleting":
            self.complete_operations(job.uid)
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

    async def finish_deletion(self, job: Job) -> None:
        if job.provisioning_state != "deleting" or not job.final:
            return
        if not await asyncio.to_thread(self.spool.remove, job):
            log.warning("job spool left in part (a mount or a swapped directory)", uid=job.uid)
        self.store.delete_job(job.uid)
        self.complete_operations(job.uid)
        log.info("job deleted", job=job.name, uid=job.uid)

    def complete_operations(self, target: str) -> None:
        self.store.succeed_operations(target)
