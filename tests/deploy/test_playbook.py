"""The Ansible deployment: idempotent, restarts only what changed, and `make dev-down` undoes it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.cluster import DEV_NODES, cluster_healthy, run_playbook, sh

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("dev_cluster")]


def daemon_pids() -> dict[str, int]:
    """Daemon name -> pid, from the pidfiles bai-daemonctl manages."""
    pids = {
        "munged": Path("/run/munge/munged.pid"),
        "slurmctld": Path("/run/slurmctld.pid"),
        "bai": Path("/run/bai.pid"),
    }
    pids |= {f"slurmd:{p.stem[7:]}": p for p in Path("/run").glob("slurmd-*.pid")}
    pids |= {f"sshd:{p.stem[5:]}": p for p in Path("/run").glob("sshd-*.pid")}
    return {name: int(path.read_text().split()[0]) for name, path in pids.items() if path.exists()}


def recap(result: subprocess.CompletedProcess[str]) -> dict[str, int]:
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    m = re.search(r"ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", result.stdout)
    assert m, result.stdout[-2000:]
    return dict(zip(("ok", "changed", "unreachable", "failed"), map(int, m.groups()), strict=True))


def test_rerun_changes_nothing_and_restarts_nothing() -> None:
    before = daemon_pids()
    assert len(before) == 3 + 5 + 5

    assert recap(run_playbook())["changed"] == 0

    assert daemon_pids() == before


def test_config_change_restarts_only_slurm(tmp_path: Path) -> None:
    before = daemon_pids()
    extra = tmp_path / "vars.yml"
    extra.write_text("slurm_min_job_age: 301\n")
    try:
        result = run_playbook("site.yml", "-e", f"@{extra}")
        assert recap(result)["changed"] > 0
        after = daemon_pids()
        assert "MinJobAge=301" in Path("/etc/slurm/slurm.conf").read_text()
        restarted = {name for name in before if after[name] != before[name]}
        assert restarted == {n for n in before if n == "slurmctld" or n.startswith("slurmd:")}
    finally:
        recap(run_playbook())
    assert "MinJobAge=300" in Path("/etc/slurm/slurm.conf").read_text()
    assert cluster_healthy() or _wait_healthy()


def test_dev_down_stops_everything_and_site_brings_it_back() -> None:
    recap(run_playbook("dev-down.yml"))
    assert daemon_pids() == {}
    assert "is DOWN" in sh("scontrol", "ping").stdout
    listening = sh("ss", "-ltn").stdout
    assert not [addr for addr, _ in DEV_NODES.values() if f"{addr}:" in listening], listening

    assert recap(run_playbook())["changed"] > 0
    assert _wait_healthy()


def _wait_healthy() -> bool:
    import time

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if cluster_healthy():
            return True
        time.sleep(0.5)
    return False
