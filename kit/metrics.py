"""Prometheus metrics shared by every service: request counts and latencies per endpoint.

Per-request counts and latencies are kept in plain integers and turned into metric families
only when Prometheus scrapes (a custom collector): the client library's locked counters would
cost the ROBERT status path more than the rest of its bookkeeping together. Labels never carry
an identifier, a key or a code.

One ``CollectorRegistry`` per application (``registry_of``): a service's own counters go in it
beside the request metrics of every service mounted in the same application.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)

REGISTRY = web.AppKey("kit_metrics_registry", CollectorRegistry)


def registry_of(app: web.Application) -> CollectorRegistry:
    """The application's metrics registry, created on first use."""
    registry = app.get(REGISTRY)
    if registry is None:
        registry = app[REGISTRY] = CollectorRegistry(auto_describe=True)
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """The text exposition format of a registry."""
    return generate_latest(registry)


async def metrics_handler(request: web.Request) -> web.Response:
    """GET /metrics: every service's metrics in this application, Prometheus text format."""
    body = render(registry_of(request.app))
    return web.Response(body=body, content_type="text/plain", charset="utf-8")


class _RequestStats:
    """Requests of one (endpoint, status): their count and latency histogram."""

    __slots__ = ("buckets", "count", "total")

    def __init__(self) -> None:
        self.count = 0
        self.total = 0.0
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)


class _RequestCollector:
    """Exposes the statistics as ``<prefix>_requests`` and ``<prefix>_request_seconds``."""

    def __init__(self, prefix: str, stats: dict[tuple[str, int], _RequestStats]) -> None:
        self._prefix = prefix
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            f"{self._prefix}_requests",
            "HTTP requests by endpoint and status",
            labels=["endpoint", "status"],
        )
        latency = HistogramMetricFamily(
            f"{self._prefix}_request_seconds", "HTTP latency by endpoint", labels=["endpoint"]
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


class HttpMetrics:
    """A service's request metrics, named ``<prefix>_requests``, ``<prefix>_request_seconds``
    and ``<prefix>_rejected_requests`` (by endpoint and reason), in ``registry``."""

    def __init__(self, prefix: str, registry: CollectorRegistry | None = None) -> None:
        self.prefix = prefix
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self._requests: dict[tuple[str, int], _RequestStats] = {}
        self.registry.register(_RequestCollector(prefix, self._requests))
        self.rejected = Counter(
            f"{prefix}_rejected_requests",
            "Refused requests by endpoint and reason",
            ["endpoint", "reason"],
            registry=self.registry,
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
        """The text exposition format of this registry."""
        return render(self.registry)
