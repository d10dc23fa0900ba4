"""Prometheus metrics: a registry per app and RED metrics for every route.

Labels are the route template (``/admin/users/{user_id}``), never the raw path,
and never a user, patient or token: cardinality stays bounded and no PHI reaches
a label.
"""

from __future__ import annotations

import time

from prometheus_client import CONTENT_TYPE_LATEST as _CONTENT_TYPE
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Summary,
    generate_latest,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_TYPE_LATEST = _CONTENT_TYPE

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ServiceMetrics:
    """The registry of one service app and its RED metrics."""

    def __init__(self, service: str, registry: CollectorRegistry | None = None) -> None:
        self.service = service
        self.registry = registry or CollectorRegistry(auto_describe=True)
        if registry is None:
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
            GCCollector(registry=self.registry)
        self.requests = Counter(
            "medmesh_http_requests_total",
            "HTTP requests by route template, method and status.",
            ["service", "method", "route", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "medmesh_http_request_duration_seconds",
            "HTTP request duration by route template.",
            ["service", "method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_progress = Gauge(
            "medmesh_http_requests_in_progress",
            "HTTP requests being served.",
            ["service", "method"],
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.response_size = Summary(
            "medmesh_http_response_size_bytes",
            "HTTP response body sizes by route template.",
            ["service", "method", "route"],
            registry=self.registry,
        )
        self.audit_records = Counter(
            "medmesh_audit_records_total",
            "Audit records durably written.",
            ["service"],
            registry=self.registry,
        )
        self.audit_failures = Counter(
            "medmesh_audit_write_failures_total",
            "Audit batches that could not be written (the requests they belonged to failed).",
            ["service"],
            registry=self.registry,
        )
        self.audit_batch = Histogram(
            "medmesh_audit_batch_size",
            "Audit records per group commit.",
            ["service"],
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500),
            registry=self.registry,
        )
        self.outbox_backlog = Gauge(
            "medmesh_outbox_backlog",
            "Outbox messages not yet delivered.",
            ["service"],
            registry=self.registry,
        )
        self.audit_records.labels(service)
        self.audit_failures.labels(service)

    def counter(self, name: str, documentation: str, labels: tuple[str, ...] = ()) -> Counter:
        """Register a domain counter (``medmesh_<service>_..._total``) on this registry."""
        return Counter(name, documentation, list(labels), registry=self.registry)

    def gauge(self, name: str, documentation: str, labels: tuple[str, ...] = ()) -> Gauge:
        """Register a domain gauge on this registry."""
        return Gauge(name, documentation, list(labels), registry=self.registry)

    def histogram(
        self,
        name: str,
        documentation: str,
        labels: tuple[str, ...] = (),
        buckets: tuple[float, ...] = LATENCY_BUCKETS,
    ) -> Histogram:
        """Register a domain histogram on this registry."""
        return Histogram(name, documentation, list(labels), buckets=buckets, registry=self.registry)

    def render(self) -> bytes:
        """The registry in the Prometheus text exposition format."""
        return generate_latest(self.registry)


def route_template(scope: Scope) -> str:
    """The matched route's path template, or ``unmatched`` (never the raw path)."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    return "unmatched"


_Series = tuple[Counter, Histogram, Summary]


class MetricsMiddleware:
    """Pure ASGI middleware recording RED metrics for every HTTP request.

    The labelled children are looked up once per (method, route, status) and kept: resolving
    labels costs more than observing the value.
    """

    def __init__(
        self,
        app: ASGIApp,
        metrics: ServiceMetrics,
        skip_paths: frozenset[str] = frozenset({"/metrics"}),
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.skip_paths = skip_paths
        self._in_progress: dict[str, Gauge] = {}
        self._children: dict[tuple[str, str, int], _Series] = {}

    def _series(self, method: str, route: str, status: int) -> _Series:
        key = (method, route, status)
        found = self._children.get(key)
        if found is not None:
            return found
        m, service = self.metrics, self.metrics.service
        series: _Series = (
            m.requests.labels(service, method, route, str(status)),
            m.duration.labels(service, method, route),
            m.response_size.labels(service, method, route),
        )
        self._children[key] = series
        return series

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.skip_paths:
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        in_progress = self._in_progress.get(method)
        if in_progress is None:
            in_progress = self.metrics.in_progress.labels(self.metrics.service, method)
            self._in_progress[method] = in_progress
        in_progress.inc()
        start = time.perf_counter()
        status = 500
        size = 0

        async def send_wrapper(message: Message) -> None:
            nonlocal status, size
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                size += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - start
            requests, duration, response_size = self._series(method, route_template(scope), status)
            requests.inc()
            duration.observe(elapsed)
            response_size.observe(size)
            in_progress.dec()
