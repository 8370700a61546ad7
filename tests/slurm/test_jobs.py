"""Jobs through the backend on the real cluster: identity, GPUs, exit codes, limits, preemption."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapter.backends import CliBackend, LocalRunner
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


def batch(partition: str, output: Path, body: str, *directives: str) -> str:
    lines = ["#!/bin/bash", f"#SBATCH --partition={partition}", f"#SBATCH --output={output}"]
    lines += [f"#SBATCH {d}" for d in directives]
    return "\n".join([*lines, body, ""])


async def test_job_runs_as_the_user_with_its_gpus_and_reports_exit_code(
    backend: CliBackend, partition: PartitionFactory, workdir: Path
) -> None:
    part = await partition(nodes=("gpu-a100-1",))
    out = workdir / "out.txt"
    body = 'id -un\necho "GPUS=$SLURM_JOB_GPUS"\necho "NODE=$SLURMD_NODENAME"\nexit 7'
    job_id = await backend.submit(batch(part, out, body, "--gres=gpu:a100:2"), user="alice")

    job = await wait_job(backend, job_id, part, lambda j: j.finished)

    assert job.user == "alice"
    assert (job.state, job.exit_status, job.term_signal) == ("FAILED", 7, None)
    assert job.nodes == ("gpu-a100-1",)
    assert out.read_text().splitlines() == ["alice", "GPUS=0,1", "NODE=gpu-a100-1"]
    assert out.stat().st_uid == _uid("alice")

    ok_id = await backend.submit(batch(part, workdir / "ok.txt", "true"), user="bob")
    ok = await wait_job(backend, ok_id, part, lambda j: j.finished)
    assert (ok.user, ok.state, ok.exit_status) == ("bob", "COMPLETED", 0)


async def test_job_over_partition_time_limit_is_rejected_at_submission(
    backend: CliBackend, partition: PartitionFactory, workdir: Path
) -> None:
    part = await partition(nodes=("gpu-t4-1",), max_time_minutes=24 * 60, preempt_mode="REQUEUE")
    script = batch(part, workdir / "o.txt", "true", "--time=25:00:00")

    with pytest.raises(BackendError) as err:
        await backend.submit(script, user="alice")

    assert "Batch job submission failed: Requested time limit is invalid" in str(err.value)
    assert err.value.argv[0] in ("sbatch", "slurm_submit_batch_job")
    assert not isinstance(err.value, BackendUnavailable)
    assert await backend.jobs([part]) == []
    # 24 hours exactly is fine.
    job_id = await backend.submit(
        batch(part, workdir / "o.txt", "true", "--time=24:00:00"), user="alice"
    )
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
    # Like a checkpointing job: USR1 (preemption notice) is trapped, TERM ends it.
    body = "trap 'echo preempted' USR1\nsleep 600 &\nwhile ! wait; do :; done"
    low_id = await backend.submit(
        batch(low, workdir / "low.txt", body, "--requeue", "--signal=B:USR1@60"), user="alice"
    )
    await wait_job(backend, low_id, low, lambda j: j.state == "RUNNING")

    high_id = await backend.submit(batch(high, workdir / "high.txt", "sleep 2"), user="bob")

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


def _uid(user: str) -> int:
    import pwd

    return pwd.getpwnam(user).pw_uid
