"""What /metrics returns: bai's state rendered once per reconcile pass, plus live API metrics.

The state collector's output only changes when the reconciler has looked at Slurm again
(successfully or not) or a job outcome was counted, so it is rendered then and every other scrape
reuses the text: a scrape costs the same whatever the store holds and however many Prometheus
servers ask. Cluster and job gauges are at most one reconcile interval old; counters are live.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from adapter.metrics.collector import BaiCollector
from adapter.metrics.events import MetricEvents
from adapter.metrics.http import HttpMetrics


class Exposition:
    """The cached state text and the live registry (API request metrics)."""

    def __init__(self, collector: BaiCollector, events: MetricEvents) -> None:
        self.state = CollectorRegistry(auto_describe=False)
        self.state.register(collector)
        self.events = events
        self.live = CollectorRegistry(auto_describe=False)
        self.http = HttpMetrics(self.live)
        self._text = b""
        self._version = -1

    def refresh(self) -> None:
        """Render the state now (after each reconcile pass)."""
        self._version = self.events.version
        self._text = generate_latest(self.state)

    def render(self) -> bytes:
        if self._version != self.events.version:
            self.refresh()  # an outcome was counted since: counters are never stale
        return self._text + generate_latest(self.live)
