"""The attack suite: bob (and alice) try, with their own jobs and plain sbatch, to make bai or
its node helper act as root on what they planted. Every test names what it attacks."""

from __future__ import annotations

import os
import pwd
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster import sh
from tests.e2e.conftest import (  # noqa: F401  (fixtures and the failure report, reused)
    admin,
    alice,
    pytest_runtest_makereport,
    service,
    storage_dir,
)
from tests.e2e.service import Api, Service

SPOOL = Path("/var/lib/bai/spool")
JOB_ROOT = Path("/mnt/batch/tasks/shared/LS_root/jobs")
NODE_LOG = Path("/var/log/bai/node-helper.log")


@pytest.fixture
def bob(service: Service, admin: Api) -> Iterator[Api]:  # noqa: F811
    """A non-admin client for bob, the attacker, in the admin fixture's resource group."""
    api = Api(service, service.token("bob"), rg=admin.rg)
    yield api
    api.close()


@pytest.fixture
def workspace(admin: Api, alice: Api) -> str:  # noqa: F811
    """alice's workspace, shared by an admin with bob's group: the attacks below are about
    jobs on one cluster (tenancy itself is attacked in test_tenancy)."""
    name = f"ws-{uuid.uuid4().hex[:6]}"
    alice.workspace(name)
    admin.call("PATCH", admin.path("workspaces", name), {"tags": {"bai-groups": "bob"}})
    return name


@pytest.fixture
def outdir() -> Iterator[Path]:
    """A world-writable directory for a job's stdouterr (no volume: the host reads it as is)."""
    yield from storage_dir()


@pytest.fixture
def cluster(alice: Api, workspace: str) -> str:  # noqa: F811
    """A low-priority t4x1 cluster of two nodes, and an experiment `exp` beside it."""
    alice.cluster(
        workspace,
        "sec",
        {
            "vmSize": "t4x1",
            "vmPriority": "lowpriority",
            "scaleSettings": {"manual": {"targetNodeCount": 2}},
            "userAccountSettings": {"adminUserName": "alice"},
        },
    )
    alice.experiment(workspace, "exp")
    return alice.path("workspaces", workspace, "clusters", "sec")


def own_dir(out: Path, user: str) -> Path:
    """A world-writable directory of its own under `out` for one user's jobs, so that what an
    attack plants or finds there is that user's alone."""
    path = out / user
    path.mkdir(exist_ok=True)
    path.chmod(0o1777)
    return path


def spec(cluster: str, command: str, out: Path, **extra: Any) -> dict[str, Any]:
    """A one-node custom job whose logs go to `out`."""
    return {
        "cluster": {"id": cluster},
        "nodeCount": 1,
        "customToolkitSettings": {"commandLine": command},
        "stdOutErrPathPrefix": str(out),
        **extra,
    }


# The spool of the running job, from a variable every job has.
SPOOL_OF_JOB = 's=$(dirname "$AZ_BATCHAI_SHARED_JOB_TEMP")'
# Kill the batch script itself: nothing of bai's script runs after the job's own command.
KILL_SCRIPT = "kill -9 $PPID"


def job_uid(job: dict[str, Any]) -> str:
    return str(job["properties"]["jobOutputDirectoryPathSegment"].rsplit("/", 1)[1])


def stdouterr(out: Path, job: dict[str, Any]) -> Path:
    return out / str(job["properties"]["jobOutputDirectoryPathSegment"]) / "stdouterr"


def as_user(user: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """argv run as `user` (uid, gid and groups), as a user's shell on the host would."""
    return sh(
        "setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--", *argv, check=check
    )


def slurm_id(uid: str) -> int:
    for line in sh("squeue", "-h", "-t", "all", "-o", "%i %k").stdout.splitlines():
        number, _, comment = line.partition(" ")
        if comment == f"bai:{uid}":
            return int(number)
    raise AssertionError(f"no Slurm job with comment bai:{uid}")


def wait_in_slurm(uid: str, timeout: float = 30) -> int:
    """Poll until bai has submitted the job; its Slurm id."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return slurm_id(uid)
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def wait_slurm_done(job_id: int, timeout: float = 60) -> str:
    """Poll until Slurm shows the job finished; its state."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = sh("squeue", "-h", "-t", "all", "-j", str(job_id), "-o", "%T").stdout.strip()
        if state and state not in {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING"}:
            return state
        time.sleep(0.5)
    raise AssertionError(f"Slurm job {job_id} did not finish")


def fingerprint(path: Path) -> tuple[int, int, int, bytes]:
    """Owner, group, mode and (for a file) content: what an attack on `path` would change."""
    st = os.lstat(path)
    data = path.read_bytes() if path.is_file() and not path.is_symlink() else b""
    return st.st_uid, st.st_gid, st.st_mode, data


def home(user: str) -> Path:
    return Path(pwd.getpwnam(user).pw_dir)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"
