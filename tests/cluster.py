"""The real dev cluster for the tests: bring it up if it is down, and describe it on failure."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ANSIBLE_DIR = ROOT / "ansible"
# The strategy `make cluster` runs the dev playbook with (the Makefile's PLAY).
PLAYBOOK_STRATEGY = "mitogen_linear"
DAEMONCTL = "/usr/local/sbin/bai-daemonctl"

# The dev inventory's nodes: name -> (address, gres). Tests and later features rely on these.
DEV_NODES = {
    "gpu-a100-1": ("127.0.1.1", "gpu:a100:2"),
    "gpu-a100-2": ("127.0.1.2", "gpu:a100:2"),
    "gpu-a100-3": ("127.0.1.3", "gpu:a100:2"),
    "gpu-t4-1": ("127.0.1.11", "gpu:t4:1"),
    "gpu-t4-2": ("127.0.1.12", "gpu:t4:1"),
}


def sh(*argv: str, check: bool = False, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run argv and capture its output as text."""
    return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=timeout)


@contextlib.contextmanager
def dev_service_paused() -> Iterator[None]:
    """Stop the dev `bai` service (make dev) for the duration, and start it again afterwards.

    One adapter owns the partition include file: tests that act as the adapter (the backend
    tests, the service under test) must not race the dev service, which removes partitions no
    cluster of its store owns.
    """
    running = sh(DAEMONCTL, "status", "bai").returncode == 0
    if running:
        sh(DAEMONCTL, "stop", "bai", check=True)
    try:
        yield
    finally:
        if running:
            sh(DAEMONCTL, "start", "bai", check=True)


def cluster_healthy() -> bool:
    """The controller answers and every dev node is responding."""
    if not shutil.which("sinfo") or not os.path.exists(DAEMONCTL):
        return False
    if "is UP" not in sh("scontrol", "ping").stdout:
        return False
    out = sh("sinfo", "-N", "-h", "-o", "%N %t").stdout.split("\n")
    states = dict(line.split() for line in out if line.strip())
    return all(
        states.get(n, "").rstrip("*~#!%@$") in {"idle", "alloc", "mix"}
        and not states[n].endswith("*")
        for n in DEV_NODES
    )


def run_playbook(playbook: str = "site.yml", *args: str) -> subprocess.CompletedProcess[str]:
    """Run a playbook of ansible/ with the dev inventory, as `make cluster` does."""
    ansible = Path(sys.executable).parent / "ansible-playbook"
    return subprocess.run(
        [str(ansible), "-i", "inventories/dev", playbook, *args],
        cwd=ANSIBLE_DIR,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "ANSIBLE_STRATEGY": PLAYBOOK_STRATEGY},
    )


def resume_leftover_drains() -> list[str]:
    """Resume dev nodes an interrupted earlier run left drained or down while their slurmd answers.

    The dev cluster belongs to the tests: a run killed between draining a node (a failed setup
    task, a shrink) and undoing it must not leave the next run one node short. Slurm keeps such
    states across restarts (StateSaveLocation), so bring-up alone does not clear them.
    """
    out = sh("sinfo", "-N", "-h", "-o", "%N %t").stdout.split("\n")
    stuck = [
        name
        for name, state in (line.split() for line in out if line.strip())
        if name in DEV_NODES
        and not state.endswith("*")
        and state.rstrip("~#!%@$") in {"drain", "drng", "down", "fail", "failg"}
    ]
    for name in stuck:
        sh("scontrol", "update", f"NodeName={name}", "State=RESUME")
    return stuck


def ensure_cluster() -> None:
    """Bring the dev cluster up through the dev inventory unless it already is."""
    if os.geteuid() != 0:
        raise RuntimeError("the Slurm tests run as root (they deploy the cluster and use runuser)")
    if cluster_healthy():
        return
    result = run_playbook()
    if result.returncode != 0:
        raise RuntimeError(
            f"bringing the dev cluster up failed:\n{result.stdout[-4000:]}\n{result.stderr[-2000:]}"
        )
    deadline = time.monotonic() + 90
    while not cluster_healthy():
        if resumed := resume_leftover_drains():
            print(f"resumed dev nodes an earlier run left unusable: {', '.join(resumed)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"dev cluster not healthy after bring-up:\n{diagnostics()}")
        time.sleep(0.5)


def diagnostics(root: str = "") -> str:
    """What a failing cluster test prints: sinfo, squeue and the controller log's tail, of the
    dev cluster or of the cluster in `root` (tests/slurm's 24.11)."""
    parts = []
    inside = ["chroot", root] if root else []
    for argv in (
        ["sinfo", "-N", "-o", "%N %o %T %G %P %E"],
        ["squeue", "-a", "-t", "all", "-o", "%i %P %u %T %r %R %k"],
        ["tail", "-n", "40", "/var/log/slurm/slurmctld.log"],
    ):
        try:
            res = sh(*inside, *argv, timeout=15)
            parts.append(f"$ {' '.join(argv)}\n{res.stdout}{res.stderr}")
        except (OSError, subprocess.TimeoutExpired) as exc:
            parts.append(f"$ {' '.join(argv)}\n{exc}")
    return "\n".join(parts)
