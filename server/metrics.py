"""Prometheus metrics of one server process. Labels never carry an ID_A, key, EBID or code.

Per-request counts and latencies are kept in plain integers and turned into metric families
only when Prometheus scrapes (a custom collector): every status request updates them, and the
client library's locked counters would cost more than the rest of the bookkeeping together.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


class _RequestStats:
    """Requests of one (endpoint, status): their count and latency histogram."""

    __slots__ = ("buckets", "count", "total")

    def __init__(self) -> None:
        self.count = 0
        self.total = 0.0
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)


class _RequestCollector:
    """Exposes the per-request statistics as ``robert_requests`` and ``robert_request_seconds``."""

    def __init__(self, stats: dict[tuple[str, int], _RequestStats]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "robert_requests", "API requests by endpoint and status", labels=["endpoint", "status"]
        )
        latency = HistogramMetricFamily(
            "robert_request_seconds", "API latency by endpoint", labels=["endpoint"]
        )
        merged: dict[str, _RequestStats] = {}
        for (endpoint, status), stats in sorted(self._stats.items()):
            requests.add_metric([endpoint, str(status)], stats.count)
            into = merged.setdefault(endpoint, _RequestStats())
            into.count += stats.count
            into.total += stats.total
            into.buckets = [a + b for a, b in zip(into.buckets, stats.buckets, strict=True)]
        for endpoint, stats in merged.items():
            cumulative, running = [], 0
            for bound, n in zip([*map(str, LATENCY_BUCKETS), "+Inf"], stats.buckets, strict=True):
                running += n
                cumulative.append((bound, running))
            latency.add_metric([endpoint], cumulative, stats.total)
        yield requests
        yield latency


class Metrics:
    """The counters the API and the worker update, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._requests: dict[tuple[str, int], _RequestStats] = {}
        self.registry.register(_RequestCollector(self._requests))  # type: ignore[arg-type]
        self.rejected = Counter(
            "robert_rejected_requests",
            "Refused requests by endpoint and reason",
            ["endpoint", "reason"],
            registry=self.registry,
        )
        self.registrations = Counter(
            "robert_registrations", "Registrations created", registry=self.registry
        )
        self.reports = Counter(
            "robert_reports", "Reports processed by the worker", registry=self.registry
        )
        self.hellos = Counter(
            "robert_hellos", "Reported HELLOs by outcome", ["outcome"], registry=self.registry
        )
        self.exposed = Counter(
            "robert_exposures", "Exposure scores written", registry=self.registry
        )
        self.queue = Gauge(
            "robert_report_queue", "Reports queued or in progress", registry=self.registry
        )

    def observe(self, endpoint: str, status: int, seconds: float, reason: str) -> None:
        """Count one answered request (plain arithmetic: this runs on every request)."""
        stats = self._requests.get((endpoint, status))
        if stats is None:
            stats = self._requests[(endpoint, status)] = _RequestStats()
        stats.count += 1
        stats.total += seconds
        stats.buckets[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        if reason:
            self.rejected.labels(endpoint, reason).inc()

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
