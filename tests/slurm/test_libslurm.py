"""Slurm in-process (libslurm) against its commands, on the real cluster.

The contract: a job.json job's plan, submitted both ways as the same user (its options rendered
as `#SBATCH` lines for sbatch, given as data to libslurm), is the same Slurm job, and the job
sees the same environment, umask, identity and directory. Jobs in every state read the same
through libslurm as through `squeue --json`. Errors keep their kind.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from adapter.backends import CliBackend
from adapter.backends.libslurm import LibslurmBackend
from adapter.backends.slurm_options import SlurmOptions
from adapter.errors import BackendUnavailable
from adapter.jobs.launch import Launch
from adapter.jobs.layout import build_layout, job_segment
from adapter.jobs.script import JobScript, slurm_options
from tests.slurm.conftest import DEV, PartitionFactory, wait_job

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
    "Scheduler",  # which of slurmctld's passes started it (Main or Backfill): a matter of timing
}
PER_JOB_VARIABLES = {"SLURM_TASK_PID", "SLURM_JOB_ID", "SLURM_JOBID"}
# What the contract's job prints: what it sees of its environment, umask, identity, directory.
SEES = "env | sort; umask; id; pwd"


def show_job(job_id: int) -> dict[str, str]:
    """`scontrol show job -o` as fields, those that differ between any two jobs left out."""
    out = subprocess.run(
        ["scontrol", "show", "job", "-o", str(job_id)], capture_output=True, text=True, check=True
    ).stdout
    fields = dict(word.split("=", 1) for word in out.split() if "=" in word)
    return {k: v for k, v in fields.items() if k not in PER_JOB_FIELDS}


def plan(partition: str, spool_root: Path) -> JobScript:
    """A low-priority one-node T4 job.json job, as the service plans it (its spool under
    `spool_root`)."""
    uid = str(uuid.uuid4())
    layout = build_layout(
        segment=job_segment("sub", "rg", "ws", "exp", "same", uid),
        uid=uid,
        job_root=str(spool_root / "temp"),
        spool_root=str(spool_root),
        cluster_mount_root=str(spool_root / "mounts"),
        std_out_err_prefix="$AZ_BATCHAI_MOUNT_ROOT/logs",
        outputs=[],
        inputs=[],
    )
    return JobScript(
        title="rg/ws/exp/same",
        uid=uid,
        name="same",
        partition=partition,
        nodes=1,
        gpu_type="t4",
        gpus_per_node=1,
        time_limit_minutes=90,
        capped=False,
        priority="low",
        low_priority=True,
        grace_seconds=30,
        layout=layout,
        environment=[],
        secrets_file=None,
        plan_file=f"{layout.spool}/plan.json",
        node_addresses={},
        launch=Launch(lines=["true"]),
        job_preparation=None,
    )


async def test_a_plan_gives_the_same_job_through_sbatch_and_libslurm(
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
    options = slurm_options(plan(part, workdir))
    assert options.chdir is not None and options.output is not None
    spool = Path(options.chdir)
    spool.mkdir(parents=True)
    for made in (spool, spool.parent):
        made.chmod(0o1777)  # the job's user writes its output there
    # The plan's options, as the job's script carries them, then what the job sees (the same
    # file each time: the jobs run one after the other).
    script = "\n".join(
        ["#!/bin/bash", "# a bai job's options", *options.directives(), "", SEES, ""]
    )
    seen = {}
    for name, submitter in (("sbatch", backend), ("libslurm", libslurm_backend)):
        job_id = await submitter.submit_job(options, script, user="alice")
        job = await wait_job(backend, job_id, part, lambda j: j.finished)
        assert (job.state, job.user) == ("COMPLETED", "alice"), (name, job)
        output = Path(options.output).read_text()
        lines = [ln for ln in output.splitlines() if ln.split("=", 1)[0] not in PER_JOB_VARIABLES]
        seen[name] = (show_job(job_id), lines)

    (sbatch_job, sbatch_sees), (lib_job, lib_sees) = seen["sbatch"], seen["libslurm"]
    assert lib_job == sbatch_job
    assert lib_sees == sbatch_sees
    # The fields that carry the options are among those compared, with the plan's values.
    # (Slurm shows no job's --signal: test_jobs.py sees it arrive, through both ways.)
    carried = {
        "JobName": "same",
        "UserId": "alice(1001)",
        "Partition": part,
        "NumNodes": "1",
        "TimeLimit": "01:30:00",
        "TresPerNode": "gres:gpu:t4:1",
        "Nice": "2000",
        "Comment": options.comment,
        "WorkDir": str(spool),
        "StdOut": options.output,
        "StdErr": options.output,
        "Requeue": "1",
        "OverSubscribe": "NO",
    }
    assert {k: sbatch_job.get(k) for k in carried} == carried
    assert options.signal == "USR1" and options.signal_seconds == 30
    assert "SLURM_JOB_NAME=same" in lib_sees and "0022" in lib_sees


async def test_libslurm_reads_jobs_in_every_state_as_squeue_does(
    backend: CliBackend,
    libslurm_backend: LibslurmBackend,
    partition: PartitionFactory,
    workdir: Path,
) -> None:
    part = await partition(nodes=("gpu-t4-2",), max_time_minutes=60)
    other = await partition(nodes=("gpu-t4-2",), max_time_minutes=60)

    async def submit(body: str, *, user: str, partition: str = part, **given: Any) -> int:
        options = SlurmOptions(partition=partition, output=f"{workdir}/%j.out", **given)
        script = "\n".join(["#!/bin/bash", *options.directives(), body, ""])
        return await backend.submit_job(options, script, user=user)

    done = await submit("true", user="bob", job_name="done")
    await wait_job(backend, done, part, lambda j: j.finished)
    failed = await submit("exit 3", user="alice", comment="bai:x")
    await wait_job(backend, failed, part, lambda j: j.finished)
    running = await submit("sleep 600", user="alice", time_minutes=30, requeue=True)
    await wait_job(backend, running, part, lambda j: j.state == "RUNNING")
    pending = await submit("true", user="bob", nodes=1, nice=50)
    cancelled = await submit("true", user="alice")
    await backend.cancel(cancelled)
    await wait_job(backend, cancelled, part, lambda j: j.finished)
    await submit("true", user="alice", partition=other)  # not asked for

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
    DEV.daemonctl("stop", "slurmctld")
    try:
        started = time.monotonic()
        options = SlurmOptions(output=f"{workdir}/o")
        script = "\n".join(["#!/bin/bash", *options.directives(), "true", ""])
        with pytest.raises(BackendUnavailable) as err:
            await libslurm_backend.submit_job(options, script, user="alice")
        assert "Unable to contact slurm controller" in str(err.value), err.value
        assert err.value.argv == ("slurm_submit_batch_job",)
        with pytest.raises(BackendUnavailable) as read:
            await libslurm_backend.jobs(["any"])
        assert read.value.argv == ("slurm_load_jobs",)
        assert time.monotonic() - started < 120
    finally:
        DEV.daemonctl("start", "slurmctld")
    for _ in range(90):  # the controller and every node answer again before the next test
        states = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True)
        if states.returncode == 0 and states.stdout.split() and "unk" not in states.stdout:
            break
        await asyncio.sleep(1)
