"""Attacks on the root Prolog and Epilog of the nodes (slurm/bai-node-helper)."""

from __future__ import annotations

import os
import pwd
import re
import shutil
import stat
from pathlib import Path

import pytest

from tests.cluster import sh
from tests.e2e.service import Api
from tests.security.conftest import (
    JOB_ROOT,
    NODE_LOG,
    as_user,
    home,
    job_uid,
    spec,
    wait_in_slurm,
    wait_slurm_done,
)

pytestmark = pytest.mark.slurm


def partition_of(job_id: int) -> str:
    return sh("squeue", "-h", "-j", str(job_id), "-o", "%P").stdout.strip()


def plain_sbatch(user: str, partition: str, comment: str) -> int:
    """A plain sbatch of `user`'s, not through bai, that claims to be a bai job."""
    out = as_user(
        user,
        "sbatch",
        "--parsable",
        f"--partition={partition}",
        f"--comment={comment}",
        "--output=/dev/null",
        "--wrap=sleep 1",
    ).stdout
    return int(out.strip().split(";")[0])


def admin_comment(job_id: int) -> str:
    found = re.search(
        r"AdminComment=(.*?)\s+\w+=", sh("scontrol", "show", "job", str(job_id)).stdout
    )
    return found.group(1) if found else ""


def test_a_plain_sbatch_naming_another_users_bai_job_gets_nothing_from_the_prolog_or_epilog(
    alice: Api, workspace: str, cluster: str, outdir: Path
) -> None:
    """Attacks the Prolog/Epilog: bob's sbatch --comment=bai:<alice's job>, run beside her job
    (once its Epilog removed her job directory while she ran); then alice's own second job
    claiming the same bai job, once bai has bound the plan to her real Slurm job."""
    command = 'echo alive >"$AZ_BATCHAI_JOB_TEMP/mark"; sleep 10; cat "$AZ_BATCHAI_JOB_TEMP/mark"'
    uid = job_uid(alice.job(workspace, "exp", "victim", spec(cluster, command, outdir)))
    alice.wait_job(workspace, "exp", "victim", lambda p: p["executionState"] == "running")
    real = wait_in_slurm(uid)
    partition = partition_of(real)
    log_before = NODE_LOG.read_text() if NODE_LOG.exists() else ""
    forged = plain_sbatch("bob", partition, f"bai:{uid}")
    wait_slurm_done(forged)
    assert (JOB_ROOT / uid / "mark").read_text() == "alive\n"  # her job temp is still there
    same_user = plain_sbatch("alice", partition, f"bai:{uid}")
    wait_slurm_done(same_user)
    done = alice.wait_job(workspace, "exp", "victim")["properties"]
    assert done["executionState"] == "succeeded", done
    assert alice.read(workspace, "exp", "victim", "stdout.txt") == "alive\n"
    new_lines = NODE_LOG.read_text().removeprefix(log_before)
    assert re.search(rf"job {forged} prolog: refused: .*another user", new_lines), new_lines
    assert re.search(rf"job {forged} epilog: refused: .*another user", new_lines), new_lines
    assert re.search(rf"job {same_user} prolog: refused: .*Slurm job {real}", new_lines)
    assert "another user" in admin_comment(forged)
    assert f"Slurm job {real}" in admin_comment(same_user)


@pytest.mark.parametrize("squat", ["directory", "symlink"])
def test_a_job_temp_made_in_advance_by_another_user_is_replaced_by_a_fresh_one(
    alice: Api, workspace: str, cluster: str, outdir: Path, squat: str
) -> None:
    """Attacks the job temp: bob makes <job root>/<uuid> of alice's queued job first (his own
    directory with a link inside, or a link to his own). The job root is root's now, so bob
    cannot; a site upgraded from a world-writable job root may still hold such a squatter,
    which is planted here as root on bob's behalf and must be replaced by a fresh job temp."""
    trap = home("bob") / f"trap-{squat}"
    shutil.rmtree(trap, ignore_errors=True)
    as_user("bob", "mkdir", "-p", str(trap))
    # Two blockers fill the cluster, so the job under attack waits in the queue.
    for blocker in ("b1", "b2"):
        alice.job(workspace, "exp", blocker, spec(cluster, "sleep 6", outdir))
    check = (
        'ls -A "$AZ_BATCHAI_JOB_TEMP"; stat -c %U "$AZ_BATCHAI_JOB_TEMP"; '
        'echo data >"$AZ_BATCHAI_JOB_TEMP/out"'
    )
    uid = job_uid(alice.job(workspace, "exp", "target", spec(cluster, check, outdir)))
    target = JOB_ROOT / uid
    refused = as_user("bob", "mkdir", str(target), check=False)
    assert refused.returncode != 0 and "Permission denied" in refused.stderr
    bob = pwd.getpwnam("bob")
    if squat == "directory":
        target.mkdir()
        (target / "bobfile").touch()
        (target / "mounts").symlink_to(trap)
        for path in (target, target / "bobfile", target / "mounts"):
            os.lchown(path, bob.pw_uid, bob.pw_gid)
    else:
        target.symlink_to(trap)
        os.lchown(target, bob.pw_uid, bob.pw_gid)
    state = alice.get_job(workspace, "exp", "target")["properties"]["executionState"]
    assert state == "queued", "the attack came too late: the job already runs"
    done = alice.wait_job(workspace, "exp", "target", timeout=120)["properties"]
    assert done["executionState"] == "succeeded", done
    out = alice.read(workspace, "exp", "target", "stdout.txt").split()
    assert "bobfile" not in out and out[-1] == "alice", out
    assert trap.is_dir() and os.listdir(trap) == []  # nothing of alice's reached bob's trap
    assert not os.path.lexists(target)  # the Epilog removed the job temp it made
    assert stat.S_IMODE(JOB_ROOT.stat().st_mode) == 0o755 and JOB_ROOT.stat().st_uid == 0
    shutil.rmtree(trap)
