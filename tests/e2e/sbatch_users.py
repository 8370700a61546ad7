"""`sbatch` and `bai sbatch` as the users of the cluster's hosts run them: their uid and
groups, their working directory, their environment, and (for bai) munge or a token."""

from __future__ import annotations

import os
import pwd
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.cluster import sh
from tests.e2e.service import Service

BAI = str(Path(sys.executable).parent / "bai")
SUBMITTED = re.compile(r"^Submitted batch job (\d+)$", re.MULTILINE)


def user_dir(user: str) -> Path:
    """A fresh working directory of the user's (as their home would be)."""
    path = Path(tempfile.mkdtemp(prefix=f"sbatch-{user}-", dir="/tmp"))
    entry = pwd.getpwnam(user)
    os.chown(path, entry.pw_uid, entry.pw_gid)
    path.chmod(0o755)
    return path


def write(directory: Path, name: str, text: str | bytes, user: str) -> Path:
    path = directory / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    entry = pwd.getpwnam(user)
    os.chown(path, entry.pw_uid, entry.pw_gid)
    return path


def user_env(user: str, **extra: str) -> dict[str, str]:
    entry = pwd.getpwnam(user)
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": entry.pw_dir,
        "USER": user,
        "LOGNAME": user,
        "LANG": "C.UTF-8",
        **extra,
    }


def run_as(
    user: str,
    argv: list[str],
    cwd: Path,
    *,
    env: dict[str, str],
    stdin: bytes | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    switch = ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--"]
    result = subprocess.run(
        switch + argv,
        cwd=cwd,
        env=env,
        input=stdin if stdin is not None else b"",
        capture_output=True,
        timeout=timeout,
    )
    return subprocess.CompletedProcess(
        result.args,
        result.returncode,
        result.stdout.decode(errors="replace"),
        result.stderr.decode(errors="replace"),
    )


def bai_sbatch(
    service: Service,
    user: str,
    args: list[str],
    cwd: Path,
    *,
    stdin: bytes | None = None,
    token: str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`bai sbatch` as `user`, with munge (no token) unless a token is given."""
    extra = {"BAI_URL": service.url, "BAI_CA": service.ca, **(env or {})}
    if token:
        extra["BAI_TOKEN"] = token
    return run_as(user, [BAI, "sbatch", *args], cwd, env=user_env(user, **extra), stdin=stdin)


def raw_sbatch(
    user: str,
    args: list[str],
    cwd: Path,
    *,
    stdin: bytes | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    return run_as(user, ["sbatch", *args], cwd, env=user_env(user, **(env or {})), stdin=stdin)


def job_id(result: subprocess.CompletedProcess[str]) -> int:
    m = SUBMITTED.search(result.stdout)
    assert m and result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    return int(m.group(1))


def scontrol(job: int) -> dict[str, str]:
    """`scontrol show job -o` of one job (the first record: an array's first task)."""
    out = sh("scontrol", "show", "job", "-o", str(job)).stdout.splitlines()
    assert out, f"Slurm does not know job {job}"
    fields: dict[str, str] = {}
    for word in re.findall(r"(\w[\w:/]*)=(.*?)(?= \w[\w:/]*=|$)", out[0].strip()):
        fields[word[0]] = word[1].strip()
    return fields


def wait_done(jobs: list[int], timeout: float = 120) -> None:
    """Until Slurm shows none of the jobs (or their tasks) pending, running or completing."""
    deadline = time.monotonic() + timeout
    ids = {str(j) for j in jobs}
    while True:
        out = sh("squeue", "-h", "-t", "PD,R,CG,S,RQ", "-o", "%F %i").stdout.split()
        if not ids & set(out):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"jobs still in the queue after {timeout} s: {out}")
        time.sleep(0.3)
