"""Request counts and latency by route template (never the raw path: it names resources)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics

# Process-wide: a `_created` gauge beside every counter and histogram series would double what
# Prometheus stores for no use (metrics.md section 6: no series nobody queries).
disable_created_metrics()  # type: ignore[no-untyped-call]

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class HttpMetrics:
    """Direct instrumentation: the service observes its own requests."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "bai_http_requests",
            "API requests by route, method and status",
            ["route", "method", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "bai_http_request_duration_seconds",
            "API request latency by route and method",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route, method).observe(seconds)
