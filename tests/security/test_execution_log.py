"""Attacks on what the reconciler reads of a job's spool: execution.log and mount-error."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.service import Api, Service
from tests.security.conftest import (
    KILL_SCRIPT,
    SPOOL_OF_JOB,
    job_uid,
    own_dir,
    spec,
    wait_in_slurm,
    wait_slurm_done,
)

pytestmark = pytest.mark.slurm

# What bob's jobs leave as their execution.log, each killing the batch script so that
# nothing of bai's own script writes after them.
HOSTILE_LOGS = {
    "zero": 'ln -sf /dev/zero "$s/execution.log"',
    "fifo": 'rm -f "$s/execution.log" && mkfifo "$s/execution.log"',
    "badexit": """printf '%s\\n' '{"event":"end","exit":"abc","error":""}' >"$s/execution.log\"""",
    "huge": 'truncate -s 1G "$s/execution.log"',
    "shadow": 'ln -sf /etc/shadow "$s/execution.log"',
}


def test_hostile_execution_logs_fail_their_job_and_nothing_else_even_at_start_up(
    bob: Api, alice: Api, service: Service, workspace: str, cluster: str, outdir: Path
) -> None:
    """Attacks the reconciler and the start-up pass: /dev/zero, a FIFO, a non-integer exit, a
    1 GB sparse file and a link to /etc/shadow as execution.log, read while bai starts."""
    uids = {}
    for name, plant in HOSTILE_LOGS.items():
        command = f"sleep 4; {SPOOL_OF_JOB}; {plant}; {KILL_SCRIPT}"
        uids[name] = job_uid(bob.job(workspace, "exp", name, spec(cluster, command, outdir)))
    mine = own_dir(outdir, "alice")
    fine = job_uid(alice.job(workspace, "exp", "fine", spec(cluster, "sleep 4; echo ok", mine)))
    # Once every job is in Slurm, bai goes down while they run and end: the start-up pass is
    # the first to read what they left.
    ids = [wait_in_slurm(uid) for uid in [*uids.values(), fine]]
    service.stop()
    try:
        for job_id in ids:
            wait_slurm_done(job_id, timeout=120)
    finally:
        service.start()
    for name in HOSTILE_LOGS:
        done = bob.wait_job(workspace, "exp", name, timeout=60)["properties"]
        assert done["executionState"] == "failed", (name, done)
        codes = [e["code"] for e in done["executionInfo"]["errors"]]
        assert codes == ["ExecutionLogInvalid"], (name, done["executionInfo"])
        assert "root:" not in str(done)
    assert alice.wait_job(workspace, "exp", "fine")["properties"]["executionState"] == "succeeded"
    assert "reconcile pass crashed" not in service.tail(400)


@pytest.mark.parametrize(
    "plant",
    [
        'ln -sf /etc/shadow "$s/mount-error"',
        'ln -sf /dev/zero "$s/mount-error"',
        'rm -f "$s/mount-error"; mkfifo "$s/mount-error"',
    ],
    ids=["link-to-shadow", "link-to-dev-zero", "fifo"],
)
def test_a_hostile_mount_error_stays_out_of_the_job_errors(
    bob: Api, workspace: str, cluster: str, outdir: Path, plant: str
) -> None:
    """Attacks executionInfo.errors: a forged VolumeMountFailed end event, and a mount-error
    that links to /etc/shadow or /dev/zero, or is a FIFO."""
    end = '{"event":"end","exit":1,"error":"VolumeMountFailed"}'
    forged = f"""printf '%s\\n' '{end}' >>"$s/execution.log\""""
    command = f"{SPOOL_OF_JOB}; {plant}; {forged}; {KILL_SCRIPT}"
    bob.job(workspace, "exp", "leak", spec(cluster, command, outdir))
    done = bob.wait_job(workspace, "exp", "leak")["properties"]
    errors = done["executionInfo"]["errors"]
    assert [e["code"] for e in errors] == ["VolumeMountFailed"], errors
    message = errors[0]["message"]
    assert "did not read the job's mount-error file" in message and "root:" not in message
