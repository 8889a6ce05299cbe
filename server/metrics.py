"""Prometheus metrics of one server process. Labels never carry an ID_A, key, EBID or code."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    """The counters the API and the worker update, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "robert_requests",
            "API requests by endpoint and status",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self.rejected = Counter(
            "robert_rejected_requests",
            "Refused requests by endpoint and reason",
            ["endpoint", "reason"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "robert_request_seconds",
            "API latency by endpoint",
            ["endpoint"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
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
        self._children: dict[tuple[str, int], tuple[Any, Any]] = {}
        self.queue = Gauge(
            "robert_report_queue", "Reports queued or in progress", registry=self.registry
        )

    def observe(self, endpoint: str, status: int, seconds: float, reason: str) -> None:
        """Count one answered request (children cached: this runs on every request)."""
        key = (endpoint, status)
        children = self._children.get(key)
        if children is None:
            children = (
                self.requests.labels(endpoint, str(status)),
                self.latency.labels(endpoint),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)
        if reason:
            self.rejected.labels(endpoint, reason).inc()

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
