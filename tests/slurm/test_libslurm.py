"""Slurm in-process (libslurm) against its commands, on the real cluster.

The same script is submitted both ways, as the same user: Slurm must record the same job, and
the job must see the same environment, umask, identity and directory. Jobs in every state read
the same through libslurm as through `squeue --json`. Errors keep their kind.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import pytest

from adapter.backends import CliBackend
from adapter.backends.libslurm import LibslurmBackend
from adapter.errors import BackendUnavailable
from tests.slurm.conftest import PartitionFactory, daemonctl, wait_job

pytestmark = pytest.mark.slurm

# What differs between any two jobs, however they were submitted. (Job ids are left out by name,
# not replaced in text: on a fresh cluster job 12 would also match inside 127.0.0.1.)
PER_JOB_FIELDS = {
    "JobId",
    "Priority",
    "SubmitTime",
    "EligibleTime",
    "AccrueTime",
    "StartTime",
    "EndTime",
    "LastSchedEval",
    "PreemptEligibleTime",
    "RunTime",
}
PER_JOB_VARIABLES = {"SLURM_TASK_PID", "SLURM_JOB_ID", "SLURM_JOBID"}


def show_job(job_id: int) -> dict[str, str]:
    """`scontrol show job -o` as fields, those that differ between any two jobs left out."""
    out = subprocess.run(
        ["scontrol", "show", "job", "-o", str(job_id)], capture_output=True, text=True, check=True
    ).stdout
    fields = dict(word.split("=", 1) for word in out.split() if "=" in word)
    return {k: v for k, v in fields.items() if k not in PER_JOB_FIELDS}


async def test_libslurm_records_and_runs_the_job_exactly_as_sbatch(
    backend: CliBackend,
    libslurm_backend: LibslurmBackend,
    partition: PartitionFactory,
    workdir: Path,
) -> None:
    part = await partition(
        nodes=("gpu-t4-1",),
        max_time_minutes=24 * 60,
        preempt_mode="REQUEUE",
        grace_time_seconds=5,
        exclusive=False,  # so that the job's own --exclusive shows
    )
    script = "\n".join(
        [
            "#!/bin/bash",
            "# like a bai job: every directive bai renders",
            "#SBATCH --job-name=same",
            f"#SBATCH --partition={part}",
            "#SBATCH --nodes=1",
            "#SBATCH --exclusive",
            "#SBATCH --gres=gpu:t4:1",
            "#SBATCH --time=90",
            "#SBATCH --nice=1000",
            "#SBATCH --comment=bai:same",
            f"#SBATCH --chdir={workdir}",
            f"#SBATCH --output={workdir}/%x-%u.out",  # the same file: the jobs run one by one
            "#SBATCH --requeue",
            "#SBATCH --signal=B:USR1@30",
            "env | sort; umask; id; pwd",
            "",
        ]
    )
    seen = {}
    for name, submitter in (("sbatch", backend), ("libslurm", libslurm_backend)):
        job_id = await submitter.submit(script, user="alice")
        recorded = show_job(job_id)
        job = await wait_job(backend, job_id, part, lambda j: j.finished)
        assert (job.state, job.user) == ("COMPLETED", "alice"), (name, job)
        output = (workdir / "same-alice.out").read_text()
        lines = [ln for ln in output.splitlines() if ln.split("=", 1)[0] not in PER_JOB_VARIABLES]
        seen[name] = (recorded, lines)

    (sbatch_job, sbatch_sees), (lib_job, lib_sees) = seen["sbatch"], seen["libslurm"]
    assert lib_job == sbatch_job
    assert lib_sees == sbatch_sees
    # The fields that carry the directives are among those compared.
    assert sbatch_job["Nice"] == "1000" and sbatch_job["TimeLimit"] == "01:30:00"
    assert sbatch_job["TresPerNode"] == "gres:gpu:t4:1" and sbatch_job["OverSubscribe"] == "NO"
    assert sbatch_job["Requeue"] == "1" and sbatch_job["Comment"] == "bai:same"
    assert "SLURM_JOB_NAME=same" in lib_sees and "0022" in lib_sees


async def test_libslurm_reads_jobs_in_every_state_as_squeue_does(
    backend: CliBackend,
    libslurm_backend: LibslurmBackend,
    partition: PartitionFactory,
    workdir: Path,
) -> None:
    part = await partition(nodes=("gpu-t4-2",), max_time_minutes=60)
    other = await partition(nodes=("gpu-t4-2",), max_time_minutes=60)

    def script(body: str, *directives: str) -> str:
        lines = [f"#SBATCH --partition={part}", f"#SBATCH --output={workdir}/%j.out"]
        return "\n".join(["#!/bin/bash", *lines, *(f"#SBATCH {d}" for d in directives), body])

    done = await backend.submit(script("true", "--job-name=done"), user="bob")
    await wait_job(backend, done, part, lambda j: j.finished)
    failed = await backend.submit(script("exit 3", "--comment=bai:x"), user="alice")
    await wait_job(backend, failed, part, lambda j: j.finished)
    running = await backend.submit(script("sleep 600", "--time=30", "--requeue"), user="alice")
    await wait_job(backend, running, part, lambda j: j.state == "RUNNING")
    pending = await backend.submit(script("true", "--nodes=1", "--nice=50"), user="bob")
    cancelled = await backend.submit(script("true"), user="alice")
    await backend.cancel(cancelled)
    await wait_job(backend, cancelled, part, lambda j: j.finished)
    await backend.submit(script("true").replace(part, other), user="alice")  # not asked for

    from_squeue = await backend.jobs([part])
    from_libslurm = await libslurm_backend.jobs([part])
    # Asked again with nothing changed, slurmctld says so and the last records serve.
    again = await libslurm_backend.jobs([part])

    assert sorted(from_libslurm, key=lambda j: j.job_id) == sorted(
        from_squeue, key=lambda j: j.job_id
    )
    assert again == from_libslurm
    states = {j.job_id: j.state for j in from_libslurm}
    assert states == {
        done: "COMPLETED",
        failed: "FAILED",
        running: "RUNNING",
        pending: "PENDING",
        cancelled: "CANCELLED",
    }
    assert next(j for j in from_libslurm if j.job_id == failed).exit_status == 3


async def test_libslurm_with_the_controller_down_is_backend_unavailable(
    libslurm_backend: LibslurmBackend, workdir: Path
) -> None:
    daemonctl("stop", "slurmctld")
    try:
        started = time.monotonic()
        with pytest.raises(BackendUnavailable) as err:
            await libslurm_backend.submit(
                f"#!/bin/bash\n#SBATCH --output={workdir}/o\ntrue\n", user="alice"
            )
        assert "Unable to contact slurm controller" in str(err.value), err.value
        assert err.value.argv == ("slurm_submit_batch_job",)
        with pytest.raises(BackendUnavailable) as read:
            await libslurm_backend.jobs(["any"])
        assert read.value.argv == ("slurm_load_jobs",)
        assert time.monotonic() - started < 120
    finally:
        daemonctl("start", "slurmctld")
    for _ in range(90):  # the controller and every node answer again before the next test
        states = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True)
        if states.returncode == 0 and states.stdout.split() and "unk" not in states.stdout:
            break
        await asyncio.sleep(1)
