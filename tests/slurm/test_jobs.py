"""Jobs through the backend on the real cluster: identity, GPUs, exit codes, limits, preemption."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from adapter.backends import CliBackend
from adapter.backends.slurm_options import SlurmOptions
from adapter.errors import BackendError, BackendUnavailable
from tests.slurm.conftest import PartitionFactory, SlurmCluster, wait_for, wait_job

pytestmark = pytest.mark.slurm
RELEASES = ("22.05", "24.11")


@pytest.fixture
def way() -> str:
    raise AssertionError("parametrized by tests/slurm/conftest.py")


@pytest.fixture
def backend(cluster: SlurmCluster, way: str, request: pytest.FixtureRequest) -> CliBackend:
    """Each job test runs once per way of submitting: the sbatch command, and libslurm."""
    if way == "sbatch":
        return CliBackend(cluster.runner())
    found: CliBackend = request.getfixturevalue("libslurm_backend")
    return found


async def submit(
    backend: CliBackend, partition: str, output: Path, body: str, *, user: str, **options: Any
) -> int:
    """A job as bai submits one: its options as data, and a script carrying them."""
    given = SlurmOptions(partition=partition, output=str(output), **options)
    script = "\n".join(["#!/bin/bash", *given.directives(), body, ""])
    return await backend.submit_job(given, script, user=user)


async def test_backend_names_the_release_it_talks_to(
    backend: CliBackend, cluster: SlurmCluster
) -> None:
    assert await backend.release() == cluster.release


async def test_job_runs_as_the_user_with_its_gpus_and_reports_exit_code(
    backend: CliBackend, cluster: SlurmCluster, partition: PartitionFactory, workdir: Path
) -> None:
    node = cluster.with_gpu("a100")[0]
    part = await partition(nodes=(node,))
    out = workdir / "out.txt"
    body = 'id -un\necho "GPUS=$SLURM_JOB_GPUS"\necho "NODE=$SLURMD_NODENAME"\nexit 7'
    job_id = await submit(backend, part, out, body, user="alice", gres="gpu:a100:2")

    job = await wait_job(backend, job_id, part, lambda j: j.finished)

    assert job.user == "alice"
    assert (job.state, job.exit_status, job.term_signal) == ("FAILED", 7, None)
    assert job.nodes == (node,)
    assert cluster.host(out).read_text().splitlines() == ["alice", "GPUS=0,1", f"NODE={node}"]
    assert cluster.host(out).stat().st_uid == _uid("alice")

    ok_id = await submit(backend, part, workdir / "ok.txt", "true", user="bob")
    ok = await wait_job(backend, ok_id, part, lambda j: j.finished)
    assert (ok.user, ok.state, ok.exit_status) == ("bob", "COMPLETED", 0)


async def test_jobs_with_every_option_bai_submits_complete_fail_and_cancel(
    backend: CliBackend, cluster: SlurmCluster, partition: PartitionFactory
) -> None:
    part = await partition(
        nodes=tuple(cluster.with_gpu("t4")), max_time_minutes=60, preempt_mode="REQUEUE"
    )

    async def job(name: str, body: str, user: str) -> int:
        options = SlurmOptions(
            job_name=name,
            partition=part,
            nodes=1,
            exclusive=True,
            gres="gpu:t4:1",
            time_minutes=5,
            nice=10,
            comment=f"bai:{name}",
            chdir="/tmp",
            output="/dev/null",
            requeue=True,
            signal="USR1",
            signal_seconds=60,
        )
        script = "\n".join(["#!/bin/bash", *options.directives(), body, ""])
        return await backend.submit_job(options, script, user=user)

    ok = await job("ok", "true", "alice")
    fails = await job("fails", "exit 3", "alice")
    held = await job("held", "sleep 300", "bob")
    done = await wait_job(backend, ok, part, lambda j: j.finished)
    assert (done.state, done.exit_status, done.user, done.comment) == (
        "COMPLETED",
        0,
        "alice",
        "bai:ok",
    )
    assert done.time_limit_minutes == 5 and done.requeue and len(done.nodes) == 1
    assert done.start_time is not None and done.end_time is not None
    failed = await wait_job(backend, fails, part, lambda j: j.finished)
    assert (failed.state, failed.exit_status) == ("FAILED", 3)
    await backend.cancel(held)
    cancelled = await wait_job(backend, held, part, lambda j: j.finished)
    assert (cancelled.state, cancelled.user) == ("CANCELLED", "bob")


async def test_job_over_partition_time_limit_is_rejected_at_submission(
    backend: CliBackend, cluster: SlurmCluster, partition: PartitionFactory, workdir: Path
) -> None:
    nodes = (cluster.with_gpu("t4")[0],)
    part = await partition(nodes=nodes, max_time_minutes=24 * 60, preempt_mode="REQUEUE")
    with pytest.raises(BackendError) as err:
        await submit(backend, part, workdir / "o.txt", "true", user="alice", time_minutes=25 * 60)

    assert "Batch job submission failed: Requested time limit is invalid" in str(err.value)
    assert err.value.argv[0] in ("sbatch", "slurm_submit_batch_job")
    assert not isinstance(err.value, BackendUnavailable)
    assert await backend.jobs([part]) == []
    # 24 hours exactly is fine.
    job_id = await submit(backend, part, workdir / "o.txt", "true", user="alice", time_minutes=1440)
    job = await wait_job(backend, job_id, part, lambda j: j.finished)
    assert job.time_limit_minutes == 24 * 60


async def test_high_tier_job_preempts_and_requeues_low_tier_job(
    backend: CliBackend, cluster: SlurmCluster, partition: PartitionFactory, workdir: Path
) -> None:
    node = (cluster.with_gpu("t4")[1],)
    low = await partition(
        nodes=node,
        priority_tier=1,
        preempt_mode="REQUEUE",
        grace_time_seconds=2,
        max_time_minutes=24 * 60,
    )
    high = await partition(nodes=node, priority_tier=10, preempt_mode="OFF")
    # Like a checkpointing job: USR1 (the preemption notice, its --signal) is trapped, TERM
    # ends it. The notice goes to a file of its own: the requeued job's run truncates its output.
    notice = workdir / "notice.txt"
    body = f"trap 'echo preempted >>{notice}' USR1\nsleep 600 &\nwhile ! wait; do :; done"
    low_id = await submit(
        backend, low, workdir / "low.txt", body, user="alice", requeue=True, signal="USR1"
    )
    await wait_job(backend, low_id, low, lambda j: j.state == "RUNNING")

    high_id = await submit(backend, high, workdir / "high.txt", "sleep 2", user="bob")

    jobs = await wait_for(
        backend,
        lambda js: any(j.job_id == high_id and j.state in {"RUNNING", "COMPLETED"} for j in js),
        [low, high],
    )
    victim = next(j for j in jobs if j.job_id == low_id)
    assert victim.restart_count == 1
    assert victim.state in {"PENDING", "REQUEUED"}, victim
    high_job = next(j for j in jobs if j.job_id == high_id)
    assert high_job.nodes == node
    assert (
        cluster.host(notice).read_text() == "preempted\n"
    )  # the batch shell alone got it (B:), once


def _uid(user: str) -> int:
    import pwd

    return pwd.getpwnam(user).pw_uid
