"""Records what the real sbatch prints for the cases in cases.json, into recorded.json.

Not a test: run it as root on the dev cluster after a Slurm change, then review the diff:

    .venv/bin/python tests/unit/sbatch/record.py

Each case runs as alice in a fresh directory holding the case's files, with only PATH and HOME
in the environment besides the case's own; a job it submits is cancelled at once.
"""

from __future__ import annotations

import json
import pathlib
import shutil
import subprocess
import tempfile
from typing import Any

HERE = pathlib.Path(__file__).parent
USER = "alice"


def held_jobs() -> set[str]:
    """The user's held jobs: -Q cases submit without printing the id (cases use --hold)."""
    out = subprocess.run(
        ["squeue", "-h", "-u", USER, "-t", "PD", "-o", "%A %r"], capture_output=True, text=True
    ).stdout
    return {line.split()[0] for line in out.splitlines() if line.endswith("JobHeldUser")}


def run(case: dict[str, Any]) -> dict[str, Any]:
    before = held_jobs()
    work = pathlib.Path(tempfile.mkdtemp(prefix="sbatch-record-"))
    try:
        for name, text in dict(case.get("files", {})).items():
            (work / name).write_bytes(str(text).encode("utf-8", "surrogateescape"))
        shutil.chown(work, USER, USER)
        for path in work.iterdir():
            shutil.chown(path, USER, USER)
        env = [f"{k}={v}" for k, v in dict(case.get("env", {})).items()]
        argv = ["setpriv", f"--reuid={USER}", f"--regid={USER}", "--init-groups", "--"]
        argv += ["env", "-i", "PATH=/usr/bin:/bin", f"HOME={work}", *env, "sbatch"]
        proc = subprocess.run(
            [*argv, *case["argv"]],
            cwd=work,
            input=str(case.get("stdin", "")).encode(),
            capture_output=True,
        )
        out = proc.stdout.decode()
        submitted = {line.split()[-1] for line in out.splitlines() if "batch job" in line}
        for job in submitted | (held_jobs() - before):
            subprocess.run(["scancel", job], check=True)
        return {
            **case,
            "stderr": proc.stderr.decode(),
            "code": proc.returncode,
            "submitted": bool(submitted),
        }
    finally:
        shutil.rmtree(work)


def main() -> None:
    cases = json.loads((HERE / "cases.json").read_text())
    recorded = [run(case) for case in cases]
    (HERE / "recorded.json").write_text(json.dumps(recorded, indent=1) + "\n")


if __name__ == "__main__":
    main()
