"""The Ansible deployment: idempotent, restarts only what changed, and `make dev-down` undoes it."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import yaml  # type: ignore[import-untyped]

from tests.cluster import DEV_NODES, cluster_healthy, run_playbook, sh

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("dev_cluster")]
ROOT = Path(__file__).resolve().parents[2]


def daemon_pids() -> dict[str, int]:
    """Daemon name -> pid, from the pidfiles bai-daemonctl manages."""
    pids = {
        "munged": Path("/run/munge/munged.pid"),
        "slurmctld": Path("/run/slurmctld.pid"),
        "bai": Path("/run/bai.pid"),
        "prometheus": Path("/run/prometheus.pid"),
        "node-exporter": Path("/run/node-exporter.pid"),
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
    # munged, slurmctld, bai; 5 slurmd and 5 node sshds; the controller sshd (ssh runner);
    # Prometheus and the node exporter
    assert len(before) == 3 + 5 + 5 + 1 + 2

    assert recap(run_playbook())["changed"] == 0

    assert daemon_pids() == before


def test_a_check_mode_run_on_the_deployed_host_predicts_no_change() -> None:
    """What an operator runs before applying a playbook (--check): on the deployed dev host it
    changes nothing, fails nothing, and says nothing would change."""
    before = daemon_pids()
    counts = recap(run_playbook("site.yml", "--check"))
    assert (counts["changed"], counts["failed"]) == (0, 0), counts
    assert daemon_pids() == before


def test_config_change_restarts_only_slurm_then_dev_down_stops_all_and_site_brings_it_back(
    tmp_path: Path,
) -> None:
    """Three playbook runs (each about 20 s of the suite): one with two changes (a Slurm
    setting, and a Grafana configuration directory as if Grafana were installed); then
    `dev-down`; then `site.yml` as it is, which brings everything back and undoes the change."""
    before = daemon_pids()
    extra = tmp_path / "vars.yml"
    grafana, dashboards = tmp_path / "grafana", tmp_path / "dashboards"
    grafana.mkdir()  # Grafana's configuration directory exists: Grafana is installed here
    extra.write_text(
        f"slurm_min_job_age: 301\nbai_grafana_dir: {grafana}\n"
        f"bai_grafana_dashboards_dir: {dashboards}\n"
    )
    restored = False
    try:
        result = run_playbook("site.yml", "-e", f"@{extra}")
        assert recap(result)["changed"] > 0
        after = daemon_pids()
        assert "MinJobAge=301" in Path("/etc/slurm/slurm.conf").read_text()
        restarted = {name for name in before if after[name] != before[name]}
        assert restarted == {n for n in before if n == "slurmctld" or n.startswith("slurmd:")}
        _check_grafana(grafana)

        recap(run_playbook("dev-down.yml"))
        assert daemon_pids() == {}
        assert "is DOWN" in sh("scontrol", "ping").stdout
        listening = sh("ss", "-ltn").stdout
        assert not [addr for addr, _ in DEV_NODES.values() if f"{addr}:" in listening], listening
        assert not [p for p in (":9090 ", ":9100 ", ":8443 ") if p in listening], listening

        assert recap(run_playbook())["changed"] > 0
        restored = True
    finally:
        if not restored:  # a failure above leaves the change, or the cluster down: undo it
            recap(run_playbook())
    assert "MinJobAge=300" in Path("/etc/slurm/slurm.conf").read_text()
    assert _wait_healthy()


def _check_grafana(grafana: Path) -> None:
    provisioning = grafana / "provisioning"
    (source,) = yaml.safe_load((provisioning / "datasources/bai-prometheus.yaml").read_text())[
        "datasources"
    ]
    assert source["type"] == "prometheus"
    (provider,) = yaml.safe_load((provisioning / "dashboards/bai.yaml").read_text())["providers"]
    installed = Path(provider["options"]["path"]) / "bai-dashboard.json"
    assert installed.read_bytes() == (ROOT / "monitoring/grafana/bai-dashboard.json").read_bytes()
    # The datasource is the Prometheus the role deployed, and it scrapes bai over TLS.
    deadline = time.monotonic() + 120
    while True:
        result = httpx.get(
            f"{source['url']}/api/v1/query", params={"query": 'up{job="bai"}'}, timeout=5
        ).json()["data"]["result"]
        if result and result[0]["value"][1] == "1":
            break
        assert time.monotonic() < deadline, result
        time.sleep(1)


def _wait_healthy() -> bool:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if cluster_healthy():
            return True
        time.sleep(0.5)
    return False
