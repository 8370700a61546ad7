"""JobService over FakeSlurm: a job is recorded, then sbatched as its user; reconciler passes turn
Slurm's states and the job's own execution.log into Batch AI execution states; terminate and
delete go through scancel; requeues are counted; low-priority jobs are capped at 24 hours."""

from __future__ import annotations

import os
import pwd
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from adapter.api.resources import job_resource
from adapter.backends.fake import FakeSlurm
from adapter.clusters.service import ClusterKey
from adapter.errors import BackendUnavailable, Conflict, InvalidRequest
from adapter.jobs.translate import JobKey
from tests.unit.services.site import BOB, EXP, RG, SUB, WS, Site

START = {"event": "start", "run": 0, "nodes": 1}
NOTICE = {"event": "notice", "run": 0, "signal": "USR1"}
ALICE_UID = pwd.getpwnam("alice").pw_uid


def run_of(event: dict[str, Any], run: int) -> dict[str, Any]:
    """The event as the run numbered `run` (its SLURM_RESTART_COUNT) logs it."""
    return {**event, "run": run}


def end(exit_code: int, error: str = "") -> dict[str, Any]:
    return {"event": "end", "run": 0, "exit": exit_code, "error": error}


def codes(site: Site, name: str) -> list[str]:
    return [e["code"] for e in site.stored(name).errors]


def counter(site: Site, name: str) -> float:
    return sum(value for _labels, value in site.svc.jobs.events.counter_series(name))


def slurm_id(site: Site, name: str) -> int:
    found = site.stored(name).slurm_id
    assert found is not None, f"job {name} has no Slurm id"
    return found


async def test_a_job_is_recorded_then_sbatched_as_its_user_with_its_spool_laid_out(
    site: Site,
) -> None:
    cluster = await site.cluster()
    await site.job("j1", secrets=[{"name": "TOKEN", "value": "s3cret"}])
    job = site.stored("j1")
    (sent,) = site.slurm.submitted
    assert job.slurm_id == sent.job_id and job.execution_state == "queued"
    assert (sent.user, sent.args, sent.script) == ("alice", (), job.script)
    opts = sent.options
    assert (opts.partition, opts.comment, opts.nodes, opts.gres) == (
        cluster.partition,
        f"bai:{job.uid}",
        1,
        "gpu:a100:2",
    )
    assert opts.time_minutes == 7 * 24 * 60 and opts.exclusive and opts.requeue
    # The spool is the job user's, and the secret is in its 0600 file, no longer in the store.
    spool = Path(job.info["layout"]["spool"])
    for path in (spool, spool / "plan.json", spool / "secrets.env"):
        assert path.stat().st_uid == ALICE_UID, path
    assert stat.S_IMODE((spool / "secrets.env").stat().st_mode) == 0o600
    assert (spool / "secrets.env").read_text() == "export TOKEN=s3cret\n"
    assert job.secrets == {} and "s3cret" not in job.script


async def test_reconcile_passes_follow_a_job_from_queued_to_succeeded(site: Site) -> None:
    await site.cluster()
    await site.job("j1", secrets=[{"name": "TOKEN", "value": "s3cret"}])
    await site.reconcile()
    assert site.stored("j1").execution_state == "queued"  # PENDING

    site.slurm.start(slurm_id(site, "j1"))
    await site.reconcile()
    job = site.stored("j1")
    assert (job.execution_state, job.nodes) == ("running", ["gpu-a100-1"])
    assert job.start_time is not None and job.end_time is None

    site.write_log(job, START, end(0))
    site.slurm.finish(slurm_id(site, "j1"), 0)
    await site.reconcile()
    job = site.stored("j1")
    assert (job.execution_state, job.exit_code, job.errors) == ("succeeded", 0, [])
    assert job.end_time is not None
    spool = Path(job.info["layout"]["spool"])
    # Secrets and plans go with the run; the execution log stays for the record.
    assert sorted(os.listdir(spool)) == ["execution.log"]
    assert counter(site, "bai_jobs_finished") == 1


async def test_the_exit_code_the_job_logged_is_reported_with_jobfailed(site: Site) -> None:
    await site.cluster()
    await site.job("j1")
    job_id = slurm_id(site, "j1")
    site.slurm.start(job_id)
    site.write_log(site.stored("j1"), START, end(3, "JobFailed"))
    site.slurm.finish(job_id, 3)
    await site.reconcile()
    job = site.stored("j1")
    assert (job.execution_state, job.exit_code, codes(site, "j1")) == ("failed", 3, ["JobFailed"])
    assert {"name": "exitCode", "value": "3"} in job.errors[0]["details"]


def _timeout(fake: FakeSlurm, job_id: int) -> None:
    fake.timeout(job_id)


def _node_fail(fake: FakeSlurm, job_id: int) -> None:
    fake.finish(job_id, state="NODE_FAIL")


def _out_of_memory(fake: FakeSlurm, job_id: int) -> None:
    fake.finish(job_id, state="OUT_OF_MEMORY", signal=9)


def _forgotten(fake: FakeSlurm, job_id: int) -> None:
    fake.finish(job_id, 0)
    fake.forget(job_id)  # ran, then MinJobAge passed before bai looked; no log was written


async def _scancel(fake: FakeSlurm, job_id: int) -> None:
    await fake.cancel(job_id)  # someone's scancel, not bai's terminate


@pytest.mark.parametrize(
    ("ending", "code"),
    [
        (_timeout, "MaxWallClockTimeExceeded"),
        (_node_fail, "NodeFailure"),
        (_out_of_memory, "JobFailed"),
        (_forgotten, "JobLost"),
        (_scancel, "JobCancelled"),
    ],
)
async def test_what_slurm_says_decides_when_the_script_could_not_log_an_end(
    site: Site, ending: Callable[[FakeSlurm, int], Any], code: str
) -> None:
    await site.cluster()
    await site.job("j1")
    job_id = slurm_id(site, "j1")
    site.slurm.start(job_id)
    site.write_log(site.stored("j1"), START)  # killed before it could log its end
    if code == "JobLost":
        Path(site.stored("j1").info["layout"]["spool"], "execution.log").unlink()
    result = ending(site.slurm, job_id)
    if result is not None:
        await result
    await site.reconcile()
    assert (site.stored("j1").execution_state, codes(site, "j1")) == ("failed", [code])


async def test_an_outcome_survives_slurm_forgetting_the_job(site: Site) -> None:
    await site.cluster()
    await site.job("j1")
    job_id = slurm_id(site, "j1")
    site.slurm.start(job_id)
    await site.reconcile()
    site.write_log(site.stored("j1"), START, end(0))
    site.slurm.finish(job_id, 0)
    site.slurm.forget(job_id)  # bai was down while MinJobAge passed
    await site.reconcile()
    assert (site.stored("j1").execution_state, site.stored("j1").exit_code) == ("succeeded", 0)


async def test_terminate_cancels_in_slurm_and_ends_the_job_failed(site: Site) -> None:
    await site.cluster()
    await site.job("j1")
    job_id = slurm_id(site, "j1")
    site.slurm.start(job_id)
    await site.reconcile()

    key = JobKey(SUB, RG, WS, EXP, "j1")
    op = await site.svc.jobs.terminate(key, "alice")
    assert op is not None and op.status == "InProgress"
    assert site.stored("j1").execution_state == "terminating"
    assert site.slurm.cancelled == [job_id] and site.slurm.job(job_id).state == "CANCELLED"

    await site.reconcile()
    job = site.stored("j1")
    assert (job.execution_state, codes(site, "j1")) == ("failed", ["JobTerminated"])
    done = site.svc.store.operation(op.id)
    assert done is not None and done.status == "Succeeded"
    assert await site.svc.jobs.terminate(key, "alice") is None  # finished: nothing to do


async def test_a_job_held_for_a_small_cluster_is_submitted_when_it_grows_or_ends_at_once(
    site: Site,
) -> None:
    auto = {"autoScale": {"minimumNodeCount": 0, "maximumNodeCount": 2}}
    cluster = await site.cluster(scaleSettings=auto)
    assert cluster.nodes == {}
    await site.job("held")
    await site.job("grows")
    assert site.slurm.submitted == [] and site.stored("held").slurm_id is None

    # Terminating a job Slurm never saw ends it now, with nothing to cancel.
    op = await site.svc.jobs.terminate(JobKey(SUB, RG, WS, EXP, "held"), "alice")
    assert op is not None
    done = site.svc.store.operation(op.id)
    assert done is not None and done.status == "Succeeded"
    assert codes(site, "held") == ["JobTerminated"] and site.slurm.cancelled == []

    # One pass: the cluster grows for the job bai holds, then the job is submitted.
    await site.reconcile()
    grown = site.svc.store.cluster_by_uid(cluster.uid)
    assert grown is not None and len(grown.nodes) == 1
    (sent,) = site.slurm.submitted
    assert sent.job_id == site.stored("grows").slurm_id


async def test_delete_cancels_and_the_row_and_spool_go_once_slurm_shows_the_end(
    site: Site,
) -> None:
    await site.cluster()
    await site.job("j1")
    job_id = slurm_id(site, "j1")
    site.slurm.start(job_id)
    await site.reconcile()
    spool = Path(site.stored("j1").info["layout"]["spool"])

    op = await site.svc.jobs.delete(JobKey(SUB, RG, WS, EXP, "j1"), "alice")
    assert site.slurm.cancelled == [job_id]
    assert site.stored("j1").provisioning_state == "deleting" and op.status == "InProgress"

    await site.reconcile()
    assert site.svc.store.job(SUB, RG, WS, EXP, "j1") is None
    assert not spool.exists()
    done = site.svc.store.operation(op.id)
    assert done is not None and done.status == "Succeeded"


async def test_preemptions_are_counted_and_the_job_queues_again(site: Site) -> None:
    await site.cluster(priority="lowpriority")
    await site.job("j1")
    job_id = slurm_id(site, "j1")
    for run in (1, 2):
        site.slurm.start(job_id)
        await site.reconcile()
        assert site.stored("j1").execution_state == "running"
        # Slurm's USR1 at preemption, logged by the run (SLURM_RESTART_COUNT) it stopped
        site.write_log(
            site.stored("j1"), run_of(START, run - 1), run_of(NOTICE, run - 1), append=True
        )
        site.slurm.preempt(job_id)
        await site.reconcile()
        job = site.stored("j1")
        assert (job.execution_state, job.restarts) == ("queued", run)
        assert job_resource(job)["properties"]["executionInfo"]["preemptionCount"] == run
    assert counter(site, "bai_job_requeues") == 2
    assert counter(site, "bai_job_preemptions") == 2

    site.slurm.start(job_id)
    site.write_log(site.stored("j1"), run_of(START, 2), run_of(end(0), 2), append=True)
    site.slurm.finish(job_id, 0)
    await site.reconcile()
    job = site.stored("j1")
    assert (job.execution_state, job.restarts) == ("succeeded", 2)
    assert counter(site, "bai_job_preemptions") == 2


async def test_a_preemption_is_counted_when_the_next_run_has_started_already(site: Site) -> None:
    """bai saw neither the preemption nor the requeue: the run that follows is running and has
    logged its own start when the tracker first sees the restart count rise."""
    await site.cluster(priority="lowpriority")
    await site.job("j1")
    job_id = slurm_id(site, "j1")
    site.slurm.start(job_id)
    site.write_log(site.stored("j1"), START, NOTICE)
    site.slurm.preempt(job_id)
    site.slurm.start(job_id)
    site.write_log(site.stored("j1"), run_of(START, 1), append=True)
    await site.reconcile()
    job = site.stored("j1")
    assert (job.execution_state, job.restarts) == ("running", 1)
    assert (counter(site, "bai_job_requeues"), counter(site, "bai_job_preemptions")) == (1, 1)


async def test_a_requeue_without_a_notice_is_not_a_preemption(site: Site) -> None:
    await site.cluster(priority="lowpriority")
    await site.job("j1")
    job_id = slurm_id(site, "j1")
    site.slurm.start(job_id)
    site.write_log(site.stored("j1"), START)
    await site.slurm.requeue(job_id)  # an operator's scontrol requeue
    await site.reconcile()
    assert site.stored("j1").restarts == 1
    assert (counter(site, "bai_job_requeues"), counter(site, "bai_job_preemptions")) == (1, 0)


@pytest.mark.parametrize(
    ("priority", "asked", "minutes", "capped", "shown"),
    [
        ("lowpriority", "P2D", 24 * 60, True, "P1D"),
        ("lowpriority", "PT12H", 12 * 60, False, "PT12H"),
        ("dedicated", "P2D", 48 * 60, False, "P2D"),
    ],
)
async def test_low_priority_jobs_are_capped_at_24_hours(
    site: Site, priority: str, asked: str, minutes: int, capped: bool, shown: str
) -> None:
    await site.cluster(priority=priority)
    await site.job("j1", constraints={"maxWallClockTime": asked})
    job = site.stored("j1")
    (sent,) = site.slurm.submitted
    assert sent.options.time_minutes == minutes and job.info["capped"] is capped
    assert job_resource(job)["properties"]["constraints"] == {"maxWallClockTime": shown}

    site.slurm.start(slurm_id(site, "j1"))
    site.slurm.timeout(slurm_id(site, "j1"))
    await site.reconcile()
    code = "LowPriorityTimeLimitExceeded" if capped else "MaxWallClockTimeExceeded"
    assert codes(site, "j1") == [code]
    assert counter(site, "bai_jobs_cap_killed") == (1 if capped else 0)
    message = site.stored("j1").errors[0]["message"]
    assert ("24 hours" in message) is capped


async def test_a_job_larger_than_its_cluster_can_be_is_refused_before_it_is_recorded(
    site: Site,
) -> None:
    await site.cluster(nodes=2)
    with pytest.raises(InvalidRequest, match="nodeCount 3 is more than cluster c1") as info:
        await site.job("big", nodes=3)
    assert info.value.target == "properties.nodeCount"
    assert site.svc.store.job(SUB, RG, WS, EXP, "big") is None and site.slurm.submitted == []


async def test_the_same_put_again_is_the_same_job_and_another_body_a_conflict(
    site: Site,
) -> None:
    await site.cluster()
    first = await site.job("j1")
    again = await site.job("j1")
    assert again.uid == first.uid and len(site.slurm.submitted) == 1
    with pytest.raises(Conflict, match="already exists"):
        await site.job("j1", nodes=1, environmentVariables=[{"name": "A", "value": "1"}])


async def test_a_job_sbatched_before_a_crash_is_adopted_never_submitted_twice(
    site: Site,
) -> None:
    await site.cluster()
    site.slurm.unreachable = True
    with pytest.raises(BackendUnavailable):
        await site.job("j1")  # recorded; sbatch failed
    job = site.stored("j1")
    assert job.slurm_id is None and job.execution_state == "queued"

    # As if an earlier sbatch of it had gone through and bai stopped before recording the id.
    site.slurm.unreachable = False
    job_id = await site.slurm.submit(job.script, user="alice")
    await site.reconcile()
    assert site.stored("j1").slurm_id == job_id and len(site.slurm.submitted) == 1


async def test_a_job_left_unsubmitted_is_submitted_by_the_next_pass(site: Site) -> None:
    await site.cluster()
    site.slurm.unreachable = True
    with pytest.raises(BackendUnavailable):
        await site.job("j1")
    assert await site.svc.reconciler.run_pass() is None  # Slurm still down: nothing changes
    assert site.svc.reconciler.health.reachable is False
    site.slurm.unreachable = False
    await site.reconcile()
    (sent,) = site.slurm.submitted
    assert site.stored("j1").slurm_id == sent.job_id


async def test_another_users_cluster_is_one_that_does_not_exist(site: Site) -> None:
    await site.cluster()
    site.workspace(BOB, ws="bobs")
    with pytest.raises(InvalidRequest, match="cluster rg/ws/c1 does not exist") as info:
        await site.job("j1", owner=BOB, ws="bobs")
    assert info.value.target == "properties.cluster.id" and site.slurm.submitted == []


async def test_terminating_a_queued_job_cancels_it_before_it_ever_runs(site: Site) -> None:
    await site.cluster()
    await site.job("j1")
    job_id = slurm_id(site, "j1")
    await site.svc.jobs.terminate(JobKey(SUB, RG, WS, EXP, "j1"), "alice")
    assert site.slurm.job(job_id).state == "CANCELLED"
    await site.reconcile()
    job = site.stored("j1")
    assert (job.execution_state, codes(site, "j1")) == ("failed", ["JobTerminated"])
    assert job.start_time is None and job.nodes == []


async def test_a_held_job_whose_cluster_is_deleted_fails_without_being_submitted(
    site: Site,
) -> None:
    auto = {"autoScale": {"minimumNodeCount": 0, "maximumNodeCount": 1}}
    await site.cluster(scaleSettings=auto)
    await site.job("j1")
    await site.svc.clusters.delete(ClusterKey(SUB, RG, WS, "c1"), "alice")
    await site.reconcile()
    assert (site.stored("j1").execution_state, codes(site, "j1")) == ("failed", ["ClusterDeleted"])
    assert site.slurm.submitted == []
