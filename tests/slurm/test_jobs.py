"""Jobs through the backend on the real cluster: identity, GPUs, exit codes, limits, preemption."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from adapter.backends import CliBackend, LocalRunner
from adapter.backends.slurm_options import SlurmOptions
from adapter.errors import BackendError, BackendUnavailable
from tests.slurm.conftest import PartitionFactory, wait_for, wait_job

pytestmark = pytest.mark.slurm


@pytest.fixture(params=["sbatch", "libslurm"])
def backend(request: pytest.FixtureRequest) -> CliBackend:
    """Each job test runs once per way of submitting: the sbatch command, and libslurm."""
    if request.param == "sbatch":
        return CliBackend(LocalRunner())
    found: CliBackend = request.getfixturevalue("libslurm_backend")
    return found


async def submit(
    backend: CliBackend, partition: str, output: Path, body: str, *, user: str, **options: Any
) -> int:
    """A job as bai submits one: its options as data, and a script carrying them."""
    given = SlurmOptions(partition=partition, output=str(output), **options)
    script = "\n".join(["#!/bin/bash", *given.directives(), body, ""])
    return await backend.submit_job(given, script, user=user)


async def test_job_runs_as_the_user_with_its_gpus_and_reports_exit_code(
    backend: CliBackend, partition: PartitionFactory, workdir: Path
) -> None:
    part = await partition(nodes=("gpu-a100-1",))
    out = workdir / "out.txt"
    body = 'id -un\necho "GPUS=$SLURM_JOB_GPUS"\necho "NODE=$SLURMD_NODENAME"\nexit 7'
    job_id = await submit(backend, part, out, body, user="alice", gres="gpu:a100:2")

    job = await wait_job(backend, job_id, part, lambda j: j.finished)

    assert job.user == "alice"
    assert (job.state, job.exit_status, job.term_signal) == ("FAILED", 7, None)
    assert job.nodes == ("gpu-a100-1",)
    assert out.read_text().splitlines() == ["alice", "GPUS=0,1", "NODE=gpu-a100-1"]
    assert out.stat().st_uid == _uid("alice")

    ok_id = await submit(backend, part, workdir / "ok.txt", "true", user="bob")
    ok = await wait_job(backend, ok_id, part, lambda j: j.finished)
    assert (ok.user, ok.state, ok.exit_status) == ("bob", "COMPLETED", 0)


async def test_job_over_partition_time_limit_is_rejected_at_submission(
    backend: CliBackend, partition: PartitionFactory, workdir: Path
) -> None:
    part = await partition(nodes=("gpu-t4-1",), max_time_minutes=24 * 60, preempt_mode="REQUEUE")
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
    backend: CliBackend, partition: PartitionFactory, workdir: Path
) -> None:
    node = ("gpu-t4-2",)
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
    assert notice.read_text() == "preempted\n"  # the batch shell alone got it (B:), once


def _uid(user: str) -> int:
    import pwd

    return pwd.getpwnam(user).pw_uid
