"""/metrics cost with a large synthetic state, against one round of a classic exporter's commands.

Run after `make dev`, as root:   .venv/bin/python bench/scrape.py

bai: a store with 10,000 jobs (most finished, as after weeks of use) over 50 clusters, a snapshot
of 500 nodes with 500 running jobs, and outcome counters for every cluster. Measured: what a
scrape costs (the state text is rendered once per reconcile pass, so a scrape serves cached text
plus the live API metrics), and what that per-pass render costs, 50 times each.
Baseline: the 10 Slurm commands vpenso/prometheus-slurm-exporter runs on every scrape
(reference/metrics.md 2.1), run on the dev cluster in the same run, 10 rounds.
"""

from __future__ import annotations

import statistics
import subprocess
import tempfile
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from adapter.backends.base import SlurmJob, SlurmNode
from adapter.metrics.collector import BaiCollector
from adapter.metrics.events import MetricEvents
from adapter.metrics.exposition import Exposition
from adapter.reconciler import Reconciler
from adapter.records import Cluster, ClusterNode, Job
from adapter.settings import Settings
from adapter.snapshot import Snapshot
from adapter.store import Store

# vpenso/prometheus-slurm-exporter: cpus, nodes, node, partitions (2), queue, accounts, users,
# sshare, sdiag.
CLASSIC = [
    ["sinfo", "-h", "-o", "%C"],
    ["sinfo", "-h", "-o", "%D,%T"],
    ["sinfo", "-h", "-N", "-O", "NodeList,AllocMem,Memory,CPUsState,StateLong"],
    ["sinfo", "-h", "-o", "%R,%C"],
    ["squeue", "-a", "-r", "-h", "-o", "%P", "--states=PENDING"],
    ["squeue", "-a", "-r", "-h", "-o", "%A,%T,%r", "--states=all"],
    ["squeue", "-a", "-r", "-h", "-o", "%A|%a|%T|%C"],
    ["squeue", "-a", "-r", "-h", "-o", "%A|%u|%T|%C"],
    ["sshare", "-n", "-P", "-o", "account,fairshare"],
    ["sdiag"],
]
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def synthetic_state(path: Path) -> tuple[Store, Snapshot, list[Cluster]]:
    store = Store(path)
    clusters, nodes, jobs = [], [], []
    for c in range(50):
        uid = str(uuid.uuid4())
        cluster = Cluster(
            uid=uid,
            sub="s",
            rg="rg",
            ws=f"ws{c % 5}",
            name=f"c{c}",
            partition=f"c{c}-{uid[:6]}",
            node_type="a100x8",
            priority="lowpriority" if c % 4 == 0 else "dedicated",
            properties={
                "vmSize": "a100x8",
                "scaleSettings": {"manual": {"targetNodeCount": 10}},
                "userAccountSettings": {"adminUserName": "alice"},
            },
            secrets={},
            owner="alice",
            created=T0,
            provisioning_state="succeeded",
            provisioning_changed=T0,
            allocation_state="steady",
            allocation_changed=T0,
            errors=[],
        )
        for n in range(10):
            name = f"node-{c:02d}-{n}"
            cluster.nodes[name] = ClusterNode(name, "ready", None, T0, None)
            busy = n < 10 and (n + c) % 10 != 0
            nodes.append(
                SlurmNode(
                    name=name,
                    address=f"10.0.{c}.{n}",
                    hostname=name,
                    port=6818,
                    state="ALLOCATED" if busy else "IDLE",
                    flags=frozenset(),
                    gres="gpu:a100:8",
                    gpu_type="a100",
                    gpus=8,
                    gpus_used=8 if busy else 0,
                    cpus=96,
                    real_memory_mb=1_000_000,
                    features=("a100x8",),
                    partitions=("pool", cluster.partition),
                    reason="",
                )
            )
            if busy:
                jobs.append(
                    SlurmJob(
                        job_id=len(jobs) + 1,
                        name="j",
                        user="alice",
                        partition=cluster.partition,
                        state="RUNNING",
                        state_reason="None",
                        comment="",
                        restart_count=0,
                        nodes=(name,),
                        node_count=1,
                        submit_time=T0,
                        start_time=T0,
                        end_time=None,
                        time_limit_minutes=1440,
                        exit_status=None,
                        term_signal=None,
                        requeue=True,
                        batch_host=name,
                    )
                )
        store.put_cluster(cluster)
        clusters.append(cluster)
    template = Job(
        uid="",
        sub="s",
        rg="rg",
        ws="ws0",
        exp="e",
        name="",
        cluster_uid="",
        owner="alice",
        properties={"nodeCount": 1},
        secrets={},
        script="#!/bin/bash\ntrue\n",
        info={"labels": {}},
        created=T0,
        provisioning_state="succeeded",
        provisioning_changed=T0,
        execution_state="succeeded",
        execution_changed=T0,
        slurm_id=1,
        terminate=False,
        start_time=T0,
        end_time=T0 + timedelta(hours=1),
        exit_code=0,
        errors=[],
        restarts=0,
        nodes=["node-00-0"],
    )
    for i in range(10_000):
        c = clusters[i % len(clusters)]
        state = (
            "running"
            if i % 20 == 0
            else ("queued" if i % 20 == 1 else ("failed" if i % 7 == 0 else "succeeded"))
        )
        store.put_job(
            replace(
                template,
                uid=str(uuid.uuid4()),
                ws=c.ws,
                name=f"j{i}",
                cluster_uid=c.uid,
                execution_state=state,
            )
        )
    return store, Snapshot.build(T0, nodes, jobs), clusters


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store, snap, clusters = synthetic_state(Path(tmp) / "bai.db")
        events = MetricEvents(store)
        for c in clusters:
            labels = {
                "workspace": c.ws,
                "cluster": c.name,
                "partition": c.partition,
                "node_type": c.node_type,
                "priority": c.priority,
            }
            events.inc("bai_jobs_finished", {**labels, "outcome": "succeeded"}, 150)
            events.inc("bai_job_failures", {**labels, "code": "JobFailed"}, 30)
            for wait in (5, 50, 500, 5000):
                events.observe("bai_job_queue_wait_seconds", labels, wait)
                events.observe("bai_job_run_seconds", labels, wait * 10)
        reconciler = Reconciler(store, backend=None, interval=15)  # type: ignore[arg-type]
        reconciler.snapshot = snap
        exposition = Exposition(BaiCollector(store, reconciler, events, Settings()), events)
        exposition.http.observe("GET", "/clusters", 200, 0.002)
        renders, times, text = [], [], b""
        for _ in range(50):
            started = time.perf_counter()
            exposition.refresh()
            renders.append(time.perf_counter() - started)
        for _ in range(50):
            started = time.perf_counter()
            text = exposition.render()
            times.append(time.perf_counter() - started)
        store.close()
    series = sum(1 for line in text.splitlines() if not line.startswith(b"#"))
    rounds = []
    for _ in range(10):
        started = time.perf_counter()
        for argv in CLASSIC:
            subprocess.run(argv, capture_output=True)
        rounds.append(time.perf_counter() - started)

    def pct(values: list[float], q: float) -> float:
        return sorted(values)[min(len(values) - 1, int(q * len(values)))] * 1000

    print("bai /metrics, 10,000 jobs, 50 clusters, 500 nodes (no Slurm call):")
    print(
        f"  scrape p50 {pct(times, 0.5):.2f} ms, p99 {pct(times, 0.99):.2f} ms, "
        f"{len(text):,} bytes, {series:,} series"
    )
    print(
        f"  state render, once per reconcile pass: p50 {pct(renders, 0.5):.1f} ms, "
        f"p99 {pct(renders, 0.99):.1f} ms"
    )
    print("one round of the classic exporter's 10 Slurm commands (dev cluster, 5 nodes):")
    print(f"  p50 {pct(rounds, 0.5):.1f} ms, p99 {pct(rounds, 0.99):.1f} ms")
    ratio = statistics.median(rounds) / statistics.median(times)
    per_pass = statistics.median(rounds) / statistics.median(renders)
    print(
        f"ratio: one classic round costs {ratio:.0f}x a bai scrape and {per_pass:.1f}x bai's "
        "per-pass render; the classic round grows with the cluster and loads slurmctld on every "
        "scrape, a bai scrape never calls Slurm"
    )


if __name__ == "__main__":
    main()
