"""Prometheus metrics of one ROBERT server process. Labels never carry an ID_A, key, EBID or code.

The request counts and latencies (``robert_requests``, ``robert_request_seconds``,
``robert_rejected_requests``) come from the kit (``kit.metrics.HttpMetrics``); this adds what
the API and the worker count of the protocol.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from kit.metrics import HttpMetrics


class Metrics(HttpMetrics):
    """The counters the API and the worker update."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        super().__init__("robert", registry)
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
