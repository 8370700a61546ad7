"""The /metrics collector over a store and a snapshot, read with get_sample_value."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import cast

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from adapter.backends.base import SlurmBackend
from adapter.errors import BackendUnavailable
from adapter.metrics.collector import BaiCollector, node_state, reason_category
from adapter.metrics.events import MetricEvents
from adapter.metrics.exposition import Exposition
from adapter.reconciler import Reconciler
from adapter.settings import MetricsSettings, Settings
from adapter.snapshot import Snapshot
from adapter.store import Store
from tests.unit.clusters.factories import T0, cluster, job, node

LABELS = {
    "workspace": "ws",
    "cluster": "c1",
    "partition": "c1-012345",
    "node_type": "a100x2",
    "priority": "dedicated",
}


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "bai.db")


def registry_for(
    store: Store, snap: Snapshot | None, settings: Settings | None = None
) -> tuple[CollectorRegistry, Reconciler, MetricEvents]:
    reconciler = Reconciler(store, backend=cast(SlurmBackend, None), interval=15)
    reconciler.snapshot = snap
    events = MetricEvents(store)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(BaiCollector(store, reconciler, events, settings or Settings()))
    return registry, reconciler, events


def test_cluster_series_come_from_store_and_snapshot(store: Store) -> None:
    c = cluster(
        scale={"manual": {"targetNodeCount": 3, "nodeDeallocationOption": "requeue"}},
        rows={"n1": "ready", "n2": "ready", "n3": "failed"},
    )
    store.put_cluster(c)
    busy = replace(node("n2", state="ALLOCATED"), gpus_used=2)
    drained = node("n3", flags=frozenset({"DRAIN"}), reason="replacing a DIMM")
    snap = Snapshot.build(T0, [node("n1"), busy, drained], [job(1, c.partition, nodes=("n2",))])
    registry, reconciler, _ = registry_for(store, snap)
    reconciler.health.reachable = True

    def value(name: str, **extra: str) -> float | None:
        return registry.get_sample_value(name, {**LABELS, **extra})

    assert registry.get_sample_value("bai_slurm_up") == 1
    assert value("bai_cluster_target_nodes") == 3 and value("bai_cluster_current_nodes") == 3
    assert value("bai_cluster_nodes", state="idle") == 1
    assert value("bai_cluster_nodes", state="running") == 1
    assert value("bai_cluster_nodes", state="unusable") == 1
    assert value("bai_cluster_nodes", state="leaving") == 0  # known states are always exported
    assert value("bai_cluster_gpus", state="allocated") == 2
    assert value("bai_cluster_gpus", state="idle") == 2
    assert value("bai_cluster_gpus", state="unavailable") == 2
    assert value("bai_cluster_jobs", state="queued") == 0
    assert (
        registry.get_sample_value(
            "bai_node_drain_reason_info", {"node": "n3", "node_type": "a100x2", "reason": "admin"}
        )
        == 1
    )
    assert (
        registry.get_sample_value(
            "bai_node_state", {"node": "n2", "node_type": "a100x2", "state": "allocated"}
        )
        == 1
    )
    assert (
        registry.get_sample_value(
            "bai_job_node_info", {"slurm_job_id": "1", "partition": c.partition, "node": "n2"}
        )
        is None
    )  # off by default


def test_events_are_counters_and_histograms_that_survive_a_restart(store: Store) -> None:
    _, _, events = registry_for(store, None)
    events.inc("bai_jobs_finished", {**LABELS, "outcome": "failed"})
    events.inc("bai_jobs_finished", {**LABELS, "outcome": "failed"})
    events.inc("bai_job_failures", {**LABELS, "code": "LowPriorityTimeLimitExceeded"})
    events.inc("bai_jobs_cap_killed", LABELS)
    events.observe("bai_job_queue_wait_seconds", LABELS, 45.0)
    events.observe("bai_job_queue_wait_seconds", LABELS, 100000.0)

    registry, _, _ = registry_for(store, None)  # a new process reads them back

    assert (
        registry.get_sample_value("bai_jobs_finished_total", {**LABELS, "outcome": "failed"}) == 2
    )
    assert registry.get_sample_value("bai_jobs_cap_killed_total", LABELS) == 1
    assert (
        registry.get_sample_value(
            "bai_job_failures_total", {**LABELS, "code": "LowPriorityTimeLimitExceeded"}
        )
        == 1
    )
    assert (
        registry.get_sample_value("bai_job_queue_wait_seconds_bucket", {**LABELS, "le": "60.0"})
        == 1
    )
    assert (
        registry.get_sample_value("bai_job_queue_wait_seconds_bucket", {**LABELS, "le": "86400.0"})
        == 1
    )
    assert registry.get_sample_value("bai_job_queue_wait_seconds_count", LABELS) == 2
    assert registry.get_sample_value("bai_job_queue_wait_seconds_sum", LABELS) == 100045.0


def test_job_node_series_behind_a_setting(store: Store) -> None:
    snap = Snapshot.build(T0, [node("n1")], [job(7, "p", nodes=("n1",))])
    settings = Settings(metrics=MetricsSettings(job_node_series=True))
    registry, _, _ = registry_for(store, snap, settings)
    assert (
        registry.get_sample_value(
            "bai_job_node_info", {"slurm_job_id": "7", "partition": "p", "node": "n1"}
        )
        == 1
    )


def test_health_when_slurm_was_never_reached(store: Store) -> None:
    registry, reconciler, _ = registry_for(store, None)
    reconciler.health.errors_total = 3
    assert registry.get_sample_value("bai_slurm_up") == 0
    assert registry.get_sample_value("bai_reconcile_errors_total") == 3
    assert registry.get_sample_value("bai_reconcile_last_success_timestamp_seconds") == 0
    assert (registry.get_sample_value("bai_store_size_bytes") or 0) > 0


@pytest.mark.parametrize(
    ("state", "flags", "want"),
    [
        ("IDLE", frozenset(), "idle"),
        ("MIXED", frozenset(), "mixed"),
        ("ALLOCATED", frozenset({"DRAIN"}), "draining"),
        ("IDLE", frozenset({"DRAIN"}), "drained"),
        ("IDLE", frozenset({"NOT_RESPONDING"}), "not_responding"),
        ("DOWN", frozenset(), "down"),
        ("WEIRD", frozenset(), "other"),
    ],
)
def test_node_states_are_a_fixed_set(state: str, flags: frozenset[str], want: str) -> None:
    assert node_state(state, flags) == want


@pytest.mark.parametrize(
    ("reason", "want"),
    [
        ("", "none"),
        ("bai: setup task failed on cluster ws/c", "bai_setup_failed"),
        ("Not responding", "not_responding"),
        ("Kill task failed", "kill_task_failed"),
        ("replacing a DIMM, ticket 4711", "admin"),
    ],
)
def test_drain_reasons_become_bounded_categories(reason: str, want: str) -> None:
    assert reason_category(reason) == want


async def test_exposition_renders_per_pass_and_on_counted_outcomes(store: Store) -> None:
    """A scrape reuses the text of the last pass; a failed pass and a counted outcome both show
    at the next scrape."""
    reconciler = Reconciler(store, backend=cast(SlurmBackend, Unreachable()), interval=15)
    events = MetricEvents(store)
    exposition = Exposition(BaiCollector(store, reconciler, events, Settings()), events)
    reconciler.observers.append(exposition.refresh)
    reconciler.health.reachable = True
    assert sample(exposition.render(), "bai_slurm_up") == 1

    reconciler.health.reachable = False  # not rendered yet: scrapes reuse the cached text
    assert sample(exposition.render(), "bai_slurm_up") == 1
    reconciler.health.reachable = True
    assert await reconciler.run_pass() is None  # the pass fails: Slurm is down
    assert sample(exposition.render(), "bai_slurm_up") == 0
    assert sample(exposition.render(), "bai_reconcile_errors_total") == 1

    finished = {**LABELS, "outcome": "failed"}
    assert sample(exposition.render(), "bai_jobs_finished_total", finished) is None
    events.inc("bai_jobs_finished", finished)
    assert sample(exposition.render(), "bai_jobs_finished_total", finished) == 1


def sample(text: bytes, name: str, labels: dict[str, str] | None = None) -> float | None:
    for family in text_string_to_metric_families(text.decode()):
        for s in family.samples:
            if s.name == name and s.labels == (labels or {}):
                return float(s.value)
    return None


class Unreachable:
    async def nodes(self) -> list[object]:
        raise BackendUnavailable("slurmctld is not answering")
