"""Counters and histograms of what bai saw happen (job outcomes, waits, preemptions).

Incremented when the reconciler sees a transition, kept in the store so that they survive a
restart of bai and the deletion of jobs: Slurm forgets finished jobs after MinJobAge and sdiag's
counters reset, so neither can be the source of an outcome count (metrics.md 2.4).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from adapter.store import Store

# Queue waits and run times: seconds to a day and more (a bucket at the 24 h cap).
DURATION_BUCKETS = (
    10.0,
    30.0,
    60.0,
    300.0,
    900.0,
    1800.0,
    3600.0,
    4 * 3600.0,
    12 * 3600.0,
    86400.0,
    7 * 86400.0,
)

Labels = tuple[tuple[str, str], ...]


@dataclass
class Histogram:
    buckets: Sequence[float]
    counts: list[int] = field(default_factory=list)  # cumulative per bucket, then +Inf
    sum: float = 0.0

    def __post_init__(self) -> None:
        if not self.counts:
            self.counts = [0] * (len(self.buckets) + 1)

    def observe(self, value: float) -> None:
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[i] += 1
        self.counts[-1] += 1
        self.sum += value


class MetricEvents:
    """bai's own counters, mirrored to the store on every change."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.counters: dict[str, dict[Labels, float]] = {}
        self.histograms: dict[str, dict[Labels, Histogram]] = {}
        self.version = 0  # bumped on every change: a cached exposition knows it is stale
        for name, labels_text, value in store.counters():
            labels = tuple((k, v) for k, v in json.loads(labels_text))
            data = json.loads(value)
            if isinstance(data, dict):
                self.histograms.setdefault(name, {})[labels] = Histogram(
                    buckets=tuple(data["buckets"]), counts=list(data["counts"]), sum=data["sum"]
                )
            else:
                self.counters.setdefault(name, {})[labels] = float(data)

    @staticmethod
    def _key(labels: Mapping[str, str]) -> Labels:
        return tuple(sorted(labels.items()))

    def inc(self, name: str, labels: Mapping[str, str], amount: float = 1.0) -> None:
        key = self._key(labels)
        series = self.counters.setdefault(name, {})
        series[key] = series.get(key, 0.0) + amount
        self.version += 1
        self.store.put_counter(name, json.dumps(key), json.dumps(series[key]))

    def observe(
        self,
        name: str,
        labels: Mapping[str, str],
        value: float,
        buckets: Sequence[float] = DURATION_BUCKETS,
    ) -> None:
        key = self._key(labels)
        hist = self.histograms.setdefault(name, {}).setdefault(key, Histogram(buckets))
        hist.observe(max(0.0, value))
        self.version += 1
        self.store.put_counter(
            name,
            json.dumps(key),
            json.dumps({"buckets": list(hist.buckets), "counts": hist.counts, "sum": hist.sum}),
        )

    def counter_series(self, name: str) -> Iterator[tuple[dict[str, str], float]]:
        for key, value in self.counters.get(name, {}).items():
            yield dict(key), value

    def histogram_series(self, name: str) -> Iterator[tuple[dict[str, str], Histogram]]:
        for key, hist in self.histograms.get(name, {}).items():
            yield dict(key), hist
