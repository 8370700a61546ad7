"""The /metrics collector: the reconciler's last snapshot, the store and bai's own counters.

A scrape never calls Slurm (metrics.md 7). Names follow metrics.md 6: one `bai_` prefix, base
units, `_total` only on counters, bounded label values (states, error codes, drain reason
categories), per-job series only behind `metrics.job_node_series`.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from adapter import __version__
from adapter.clusters.inventory import NODE_STATES, REASON_PREFIX
from adapter.clusters.view import node_states
from adapter.jobs.outcome import MESSAGES
from adapter.metrics.events import DURATION_BUCKETS, Histogram, MetricEvents
from adapter.reconciler import Reconciler
from adapter.records import Cluster
from adapter.settings import Settings
from adapter.snapshot import Snapshot
from adapter.store import Store

CLUSTER_LABELS = ["workspace", "cluster", "partition", "node_type", "priority"]
JOB_STATES = ("queued", "running", "terminating")
GPU_STATES = ("allocated", "idle", "unavailable")
# Counters bai increments itself (events), with their extra label and help text.
COUNTERS = {
    "bai_jobs_finished": ("outcome", "Jobs that reached succeeded or failed"),
    "bai_job_failures": ("code", "Failed jobs by Batch AI error code"),
    "bai_jobs_cap_killed": (None, "Low-priority jobs killed by the 24-hour cap"),
    "bai_job_requeues": (None, "Times Slurm put a job back in the queue (any cause)"),
    "bai_job_preemptions": (None, "Requeues of low-priority jobs after a preemption notice"),
}
# Label values known in advance for the counters' extra label.
KNOWN_VALUES = {"outcome": ("succeeded", "failed"), "code": tuple(MESSAGES)}
HISTOGRAMS = {
    "bai_job_queue_wait_seconds": "From job creation to its first start",
    "bai_job_run_seconds": "From a job's (last) start to its end",
}


def cluster_labels(c: Cluster) -> list[str]:
    return [c.ws, c.name, c.partition, c.node_type, c.priority]


def node_state(state: str, flags: frozenset[str]) -> str:
    """A node's Slurm state as one of a fixed set (bounded label)."""
    if "NOT_RESPONDING" in flags:
        return "not_responding"
    if "DRAIN" in flags:
        return "draining" if state in {"ALLOCATED", "MIXED"} else "drained"
    if state in {"DOWN", "ERROR", "FUTURE", "UNKNOWN"}:
        return "down"
    return {"IDLE": "idle", "ALLOCATED": "allocated", "MIXED": "mixed"}.get(state, "other")


def reason_category(reason: str) -> str:
    """Drain reasons are free text; the label carries only their kind."""
    if not reason:
        return "none"
    if reason.startswith(REASON_PREFIX):
        return "bai_setup_failed" if "setup task failed" in reason else "bai"
    if reason.lower().startswith("not responding"):
        return "not_responding"
    if "kill task failed" in reason.lower():
        return "kill_task_failed"
    return "admin"


class BaiCollector:
    """Collector for prometheus_client; `collect` formats cached state only."""

    def __init__(
        self, store: Store, reconciler: Reconciler, events: MetricEvents, settings: Settings
    ) -> None:
        self.store = store
        self.reconciler = reconciler
        self.events = events
        self.settings = settings

    def describe(self) -> list[Metric]:
        return []  # no collect() at registration time

    def collect(self) -> Iterator[Metric]:
        snap = self.reconciler.latest()
        clusters = self.store.clusters()
        yield from self._health()
        yield from self._clusters(clusters, snap)
        yield from self._events(clusters)
        if snap is not None:
            yield from self._nodes(snap)
            if self.settings.metrics.job_node_series:
                yield from self._job_nodes(snap)

    def _health(self) -> Iterator[Metric]:
        health = self.reconciler.health
        info = GaugeMetricFamily("bai_build_info", "bai version", labels=["version"])
        info.add_metric([__version__], 1)
        yield info
        yield GaugeMetricFamily(
            "bai_slurm_up", "1 if the last reconcile reached Slurm", value=int(health.reachable)
        )
        yield GaugeMetricFamily(
            "bai_reconcile_duration_seconds",
            "Duration of the last reconcile pass",
            value=health.last_duration_seconds,
        )
        yield CounterMetricFamily(
            "bai_reconcile_errors", "Reconcile passes that failed", value=health.errors_total
        )
        yield CounterMetricFamily(
            "bai_reconcile_passes", "Reconcile passes run", value=health.passes_total
        )
        last = health.last_success.timestamp() if health.last_success else 0
        yield GaugeMetricFamily(
            "bai_reconcile_last_success_timestamp_seconds",
            "When a reconcile pass last succeeded (0: never)",
            value=last,
        )
        yield GaugeMetricFamily(
            "bai_reconcile_interval_seconds",
            "Configured reconcile interval",
            value=self.reconciler.interval,
        )
        yield GaugeMetricFamily(
            "bai_store_size_bytes",
            "Size of the SQLite store (with its WAL)",
            value=self.store.size_bytes(),
        )

    def _clusters(self, clusters: list[Cluster], snap: Snapshot | None) -> Iterator[Metric]:
        info = GaugeMetricFamily(
            "bai_cluster_info",
            "One per cluster (vm_size as requested)",
            labels=[*CLUSTER_LABELS, "vm_size"],
        )
        target = GaugeMetricFamily(
            "bai_cluster_target_nodes",
            "Nodes the cluster should have (autoscale: what it wants now)",
            labels=CLUSTER_LABELS,
        )
        current = GaugeMetricFamily(
            "bai_cluster_current_nodes", "Nodes the cluster has", labels=CLUSTER_LABELS
        )
        resizing = GaugeMetricFamily(
            "bai_cluster_resizing", "1 while allocationState is resizing", labels=CLUSTER_LABELS
        )
        nodes = GaugeMetricFamily(
            "bai_cluster_nodes",
            "Cluster nodes by Batch AI node state",
            labels=[*CLUSTER_LABELS, "state"],
        )
        gpus = GaugeMetricFamily(
            "bai_cluster_gpus",
            "GPUs of the cluster's nodes: allocated, idle, or unavailable "
            "(on unusable nodes); their sum is the total",
            labels=[*CLUSTER_LABELS, "state"],
        )
        jobs = GaugeMetricFamily(
            "bai_cluster_jobs",
            "Unfinished jobs by execution state",
            labels=[*CLUSTER_LABELS, "state"],
        )
        counts: dict[tuple[str, str], int] = {
            (uid, state): n for uid, state, n in self.store.active_job_counts()
        }
        for c in clusters:
            labels = cluster_labels(c)
            info.add_metric([*labels, str(c.properties.get("vmSize", ""))], 1)
            scale = c.properties.get("scaleSettings") or {}
            active = sum(1 for r in c.nodes.values() if r.state != "leaving")
            manual = scale.get("manual")
            target.add_metric(labels, manual["targetNodeCount"] if manual else active)
            current.add_metric(labels, len(c.nodes))
            resizing.add_metric(labels, int(c.allocation_state == "resizing"))
            states = node_states(c, snap)
            for state in NODE_STATES:
                nodes.add_metric([*labels, state], sum(1 for s in states.values() if s == state))
            gpu_counts = dict.fromkeys(GPU_STATES, 0)
            for name in c.nodes:
                node = snap.nodes.get(name) if snap else None
                if node is None:
                    continue
                if not node.usable:
                    gpu_counts["unavailable"] += node.gpus
                else:
                    gpu_counts["allocated"] += node.gpus_used
                    gpu_counts["idle"] += node.gpus - node.gpus_used
            for state, n in gpu_counts.items():
                gpus.add_metric([*labels, state], n)
            for state in JOB_STATES:
                jobs.add_metric([*labels, state], counts.get((c.uid, state), 0))
        yield from (info, target, current, resizing, nodes, gpus, jobs)

    def _events(self, clusters: list[Cluster]) -> Iterator[Metric]:
        # Series known in advance (every cluster, every outcome and error code) are exported as
        # 0 until something happens, so rates and panels never see a missing series.
        known = [dict(zip(CLUSTER_LABELS, cluster_labels(c), strict=True)) for c in clusters]
        for name, (extra, help_text) in COUNTERS.items():
            names = [*CLUSTER_LABELS, *([extra] if extra else [])]
            values: dict[tuple[str, ...], float] = {}
            for labels in known:
                for extra_value in KNOWN_VALUES.get(extra or "", ("",)):
                    key = [*(labels[k] for k in CLUSTER_LABELS), extra_value][: len(names)]
                    values[tuple(key)] = 0.0
            for labels, count in self.events.counter_series(name):
                values[tuple(labels.get(k, "") for k in names)] = count
            family = CounterMetricFamily(name, help_text, labels=names)
            for series_key, count in values.items():
                family.add_metric(list(series_key), count)
            yield family
        for name, help_text in HISTOGRAMS.items():
            histogram = HistogramMetricFamily(name, help_text, labels=CLUSTER_LABELS)
            series = {
                tuple(labels.get(k, "") for k in CLUSTER_LABELS): hist
                for labels, hist in self.events.histogram_series(name)
            }
            for labels in known:
                series.setdefault(
                    tuple(labels[k] for k in CLUSTER_LABELS), Histogram(DURATION_BUCKETS)
                )
            for label_values, hist in series.items():
                bounds = [*(_le(b) for b in hist.buckets), "+Inf"]
                histogram.add_metric(
                    list(label_values), list(zip(bounds, hist.counts, strict=True)), hist.sum
                )
            yield histogram

    def _nodes(self, snap: Snapshot) -> Iterator[Metric]:
        state = GaugeMetricFamily(
            "bai_node_state",
            "1 for each node's current Slurm state",
            labels=["node", "node_type", "state"],
        )
        gpus = GaugeMetricFamily(
            "bai_node_gpus", "GPUs of a node by allocation", labels=["node", "node_type", "state"]
        )
        reason = GaugeMetricFamily(
            "bai_node_drain_reason_info",
            "The kind of reason a drained or down node has",
            labels=["node", "node_type", "reason"],
        )
        since = GaugeMetricFamily(
            "bai_node_unusable",
            "1 if Slurm will not place work there",
            labels=["node", "node_type"],
        )
        for n in snap.nodes.values():
            node_type = n.features[0] if n.features else ""
            state.add_metric([n.name, node_type, node_state(n.state, n.flags)], 1)
            gpus.add_metric([n.name, node_type, "allocated"], n.gpus_used)
            gpus.add_metric([n.name, node_type, "idle"], n.gpus - n.gpus_used)
            since.add_metric([n.name, node_type], int(not n.usable))
            if not n.usable:
                reason.add_metric([n.name, node_type, reason_category(n.reason)], 1)
        yield from (state, gpus, reason, since)

    def _job_nodes(self, snap: Snapshot) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "bai_job_node_info",
            "Running jobs and their nodes",
            labels=["slurm_job_id", "partition", "node"],
        )
        for job in snap.jobs:
            if job.state == "RUNNING":
                for node in job.nodes:
                    family.add_metric([str(job.job_id), job.partition, node], 1)
        yield family


def _le(bound: float) -> str:
    return repr(float(bound))
