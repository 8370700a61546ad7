"""The shipped dashboard and rules, evaluated by a real Prometheus against the real service.

A workload with known outcomes runs on the dev cluster (successes, failures, a preemption, jobs
killed by a shortened low-priority cap, a node whose setup fails; `bai sbatch` jobs among them,
which count as any bai job does); then every panel query of
monitoring/grafana/bai-dashboard.json and every rule of monitoring/prometheus/bai-rules.yml is
evaluated through Prometheus' HTTP API. Each must return data, and the counts must be the ones
the workload produced.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml  # type: ignore[import-untyped]

from tests.cluster import sh
from tests.e2e.dcgm_standin import MAP_DIR, DcgmStandin
from tests.e2e.sbatch_users import bai_sbatch, job_id, user_dir
from tests.e2e.service import STATE_DIR, Api, Service, counts

pytestmark = pytest.mark.slurm

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "monitoring" / "grafana" / "bai-dashboard.json"
RULES = ROOT / "monitoring" / "prometheus" / "bai-rules.yml"
PROM = "http://127.0.0.1:19090"


@pytest.fixture(scope="module")
def monitored(service: Service, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The service with a 1-minute low-priority cap and per-job series; Prometheus scraping it
    and the dcgm stand-in every second."""
    service.restart(
        BAI_CLUSTERS__LOWPRIORITY_MAX_TIME_MINUTES="1", BAI_METRICS__JOB_NODE_SERIES="true"
    )
    work = tmp_path_factory.mktemp("prometheus")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [
            {
                "job_name": "bai",
                "scheme": "https",
                "tls_config": {"ca_file": service.ca},
                "static_configs": [{"targets": [service.url.removeprefix("https://")]}],
            },
            {"job_name": "dcgm", "static_configs": [{"targets": ["127.0.0.1:19400"]}]},
        ],
    }
    (work / "prometheus.yml").write_text(yaml.safe_dump(config))
    with DcgmStandin(19400), (work / "prometheus.log").open("wb") as log:
        proc = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={work / 'prometheus.yml'}",
                f"--storage.tsdb.path={work / 'data'}",
                "--web.listen-address=127.0.0.1:19090",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            while not _ready():
                assert proc.poll() is None and time.monotonic() < deadline, (
                    work / "prometheus.log"
                ).read_text()[-2000:]
                time.sleep(0.2)
            yield
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            service.restart()
            shutil.rmtree(work / "data", ignore_errors=True)


def _ready() -> bool:
    try:
        return httpx.get(f"{PROM}/-/ready", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def query(expr: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{PROM}/api/v1/query", params={"query": expr}, timeout=10)
    body = response.json()
    assert body.get("status") == "success", (expr, body)
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def query_range(expr: str, since: float) -> list[dict[str, Any]]:
    """What a Grafana time-series panel draws: the expression over the workload's window."""
    params: dict[str, str | float] = {
        "query": expr,
        "start": since,
        "end": time.time(),
        "step": "2s",
    }
    response = httpx.get(f"{PROM}/api/v1/query_range", params=params, timeout=10)
    body = response.json()
    assert body.get("status") == "success", (expr, body)
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def notices_of_first_run(slurm_id: str) -> int:
    """The USR1 notices a bai job's first run wrote into its execution log (in its spool)."""
    found = re.search(r"Comment=bai:(\S+)", sh("scontrol", "show", "job", slurm_id).stdout)
    assert found, f"job {slurm_id} has no bai comment"
    lines = (STATE_DIR / "spool" / "jobs" / found.group(1) / "execution.log").read_text()
    events = [json.loads(line) for line in lines.splitlines() if line.strip()]
    return sum(1 for e in events if e.get("event") == "notice" and e.get("run") == 0)


def scalar(expr: str) -> float:
    """The expression's one value (asked again while a stale scrape leaves it with none)."""
    result = eventually(expr, lambda r: len(r) > 0)
    assert len(result) == 1, (expr, result)
    return float(result[0]["value"][1])


def eventually(expr: str, cond: Any = bool, timeout: float = 30) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        result = query(expr)
        if cond(result):
            return result
        assert time.monotonic() < deadline, f"{expr} never satisfied: {result}"
        time.sleep(0.5)


def panel_queries(workspace: str) -> list[tuple[str, str]]:
    """Every panel target of the dashboard, with Grafana's variables filled in."""
    dashboard = json.loads(DASHBOARD.read_text())
    values = {
        "$workspace": workspace,
        "$cluster": ".*",
        "$node_type": ".*",
        "$__rate_interval": "30s",
        "$__range": "15m",
        "$__interval": "15s",
    }
    out = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for var, value in values.items():
                expr = expr.replace(var, value)
            assert "$" not in expr.replace("$__", ""), f"unfilled variable in {expr}"
            out.append((panel["title"], expr))
    return out


def left_side(expr: str) -> str:
    """An alert's expression without its final threshold comparison."""
    return re.split(r"\s(?:==|!=|>=|<=|>|<)\s[^()]*$", expr.strip())[0]


def job(cluster: str, command: str, **extra: Any) -> dict[str, Any]:
    return {
        "cluster": {"id": cluster},
        "nodeCount": 1,
        "stdOutErrPathPrefix": "/tmp",
        "customToolkitSettings": {"commandLine": command},
        **extra,
    }


def test_dashboard_and_rules_answer_with_the_workload_s_numbers(
    monitored: None, service: Service, alice: Api, admin: Api, workspace: str
) -> None:
    ws, ids, since = workspace, {}, time.time()
    for name, props in {
        "low": {
            "vmSize": "a100x2",
            "vmPriority": "lowpriority",
            "scaleSettings": {"manual": {"targetNodeCount": 2}},
        },
        "lowt4": {
            "vmSize": "t4x1",
            "vmPriority": "lowpriority",
            "scaleSettings": {"manual": {"targetNodeCount": 2}},
        },
        "ded": {"vmSize": "t4x1", "scaleSettings": {"manual": {"targetNodeCount": 1}}},
        "broken": {
            "vmSize": "a100x2",
            "scaleSettings": {"manual": {"targetNodeCount": 1}},
            "nodeSetup": {"setupTask": {"commandLine": "exit 1", "stdOutErrPathPrefix": "/tmp"}},
        },
    }.items():
        alice.cluster(ws, name, {**props, "userAccountSettings": {"adminUserName": "alice"}})
        ids[name] = alice.path("workspaces", ws, "clusters", name)
    alice.experiment(ws, "exp")

    # Killed by the (shortened, 1-minute) low-priority cap: a job asking for two days, and a
    # `bai sbatch` job asking for as much.
    created = alice.job(
        ws, "exp", "capped", job(ids["low"], "sleep 600", constraints={"maxWallClockTime": "P2D"})
    )
    assert created["properties"]["constraints"]["maxWallClockTime"] == "PT1M"
    home = user_dir("alice")
    sbatch = ["-p", f"{ws}/low", "-t", "2-0", "-o", "/dev/null", "--wrap", "sleep 600"]
    capped_sbatch = str(job_id(bai_sbatch(service, "alice", sbatch, home)))
    # A `bai sbatch` job preempted by dedicated work on a node both t4 clusters share, then
    # terminated.
    # The preemption comes once its script runs: Slurm says RUNNING while the Prolog still
    # prepares the nodes, when there is no batch shell yet to take the notice.
    started = home / "victim-started"
    wrap = f"touch {started}; sleep 600"
    sbatch = ["-p", f"{ws}/lowt4", "-N", "2", "-o", "/dev/null", "--wrap", wrap]
    victim = str(job_id(bai_sbatch(service, "alice", sbatch, home)))
    deadline = time.monotonic() + 120
    while not started.exists():
        assert time.monotonic() < deadline, "the victim's script never started"
        time.sleep(0.2)
    alice.job(ws, "exp", "ok", job(ids["ded"], "sleep 2"))
    alice.wait_job(
        ws,
        "sbatch",
        victim,
        lambda p: p["executionInfo"]["preemptionCount"] == 1 and p["executionState"] == "queued",
    )
    alice.call("POST", alice.job_path(ws, "sbatch", victim, "terminate"))
    alice.job(ws, "exp", "fails", job(ids["ded"], "exit 3"))
    alice.job(ws, "exp", "prep", job(ids["ded"], "true", jobPreparation={"commandLine": "exit 2"}))
    for name in ("ok", "fails", "prep"):
        alice.wait_job(ws, "exp", name)
    alice.wait_job(ws, "sbatch", victim)
    # A GPU job on the dedicated node: the Prolog maps its GPU for dcgm-exporter.
    alice.job(ws, "exp", "gpu", job(ids["ded"], "sleep 8"))
    alice.wait_job(ws, "exp", "gpu", lambda p: p["executionState"] == "running")
    (node,) = alice.call(
        "POST", alice.job_path(ws, "exp", "gpu", "listRemoteLoginInformation")
    ).json()["value"]
    assert (MAP_DIR / node["nodeId"] / "0").exists(), "the Prolog wrote no GPU job mapping"
    eventually('DCGM_FI_DEV_GPU_UTIL{hpc_job!=""}')
    idle_allocated = next(e for t, e in panel_queries(ws) if t == "Allocated but idle GPUs")
    assert scalar(idle_allocated) >= 1
    alice.wait_job(ws, "exp", "gpu")
    # The job reports its end from its own script; the Epilog runs after that, within seconds.
    deadline = time.monotonic() + 30
    while (MAP_DIR / node["nodeId"] / "0").exists():
        assert time.monotonic() < deadline, "the Epilog left the mapping"
        time.sleep(0.2)
    alice.wait_cluster(ws, "broken", lambda p: counts(p)["unusable"] == 1)
    for exp, name in (("exp", "capped"), ("sbatch", capped_sbatch)):
        done = alice.wait_job(ws, exp, name, timeout=180)["properties"]
        (err,) = done["executionInfo"]["errors"]
        assert err["code"] == "LowPriorityTimeLimitExceeded", (name, err)
        assert "1 minute" in err["message"] and "24-hour" in err["message"]
        assert done["constraints"]["maxWallClockTime"] == "PT1M"
    assert "TimeLimit=00:01:00" in sh("scontrol", "show", "job", capped_sbatch).stdout

    mine = f'workspace="{ws}"'
    eventually(f"sum(bai_jobs_cap_killed_total{{{mine}}}) == 2")
    assert scalar(f'sum(bai_jobs_finished_total{{{mine},outcome="succeeded"}})') == 2
    outcomes = {
        n: [e["code"] for e in alice.wait_job(ws, x, n)["properties"]["executionInfo"]["errors"]]
        for x, n in [("exp", n) for n in ("capped", "ok", "fails", "prep", "gpu")]
        + [("sbatch", capped_sbatch), ("sbatch", victim)]
    }
    assert scalar(f'sum(bai_jobs_finished_total{{{mine},outcome="failed"}})') == 5, (
        query(f"sum by (cluster, code) (bai_job_failures_total{{{mine}}}) > 0"),
        outcomes,
    )
    for code, times in (
        ("JobFailed", 1),
        ("JobPreparationFailed", 1),
        ("JobTerminated", 1),
        ("LowPriorityTimeLimitExceeded", 2),
    ):
        assert scalar(f'sum(bai_job_failures_total{{{mine},code="{code}"}})') == times, code
    # A preemption counts when the preempted run logged the USR1 notice. Slurm may send a
    # --signal up to 60 s before its time (its documentation), so under this module's 1-minute
    # cap the notice can come before the batch shell traps it, and Slurm need not send it again
    # at the preemption: the run is then a requeue alone. The metric must say what the log says.
    assert scalar(f"sum(bai_job_requeues_total{{{mine}}})") == 1
    noticed = notices_of_first_run(victim)
    assert scalar(f"sum(bai_job_preemptions_total{{{mine}}})") == min(noticed, 1), noticed
    assert scalar(f'sum(bai_cluster_nodes{{{mine},cluster="broken",state="unusable"}})') == 1
    assert scalar(f"sum(bai_job_queue_wait_seconds_count{{{mine}}})") == 7

    for title, expr in panel_queries(ws):
        assert query_range(expr, since), f"panel {title!r} drew nothing: {expr}"
    # Instant queries see only the last scrape: one that took over the 1 s interval (a busy
    # 2-core machine) marks every series stale until the next. So each is asked until it has
    # data; one that never has fails.
    rules = yaml.safe_load(RULES.read_text())["groups"]
    for rule in [r for g in rules for r in g["rules"] if "record" in r]:
        assert eventually(rule["expr"]), f"recording rule {rule['record']} returned no data"
    alerts = {r["alert"]: r["expr"] for g in rules for r in g["rules"] if "alert" in r}
    for name, expr in alerts.items():
        assert eventually(left_side(expr)), f"alert {name}: nothing to compare"
    for name in ("BaiNodesUnusable", "BaiLowPriorityCapKills"):
        assert eventually(alerts[name]), f"alert {name} did not fire"
    # Slurm goes away: the health alerts fire.
    sh("/usr/local/sbin/bai-daemonctl", "stop", "slurmctld")
    try:
        for name in ("BaiSlurmUnreachable", "BaiReconcileStale"):
            eventually(alerts[name], timeout=60)
    finally:
        sh("/usr/local/sbin/bai-daemonctl", "start", "slurmctld")
    admin.delete_cluster(ws, "broken")


def test_shipped_rules_pass_promtool() -> None:
    result = subprocess.run(
        ["promtool", "check", "rules", str(RULES)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 11 rules found" in result.stdout
