"""Prometheus metrics: a registry per app and RED metrics for every route.

Labels are the route template (``/admin/users/{user_id}``), never the raw path,
and never a user, patient or token: cardinality stays bounded and no PHI reaches
a label.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterator
from itertools import accumulate

from prometheus_client import CONTENT_TYPE_LATEST as _CONTENT_TYPE
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_TYPE_LATEST = _CONTENT_TYPE

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _RouteSeries:
    """What was observed for one (method, route template)."""

    __slots__ = ("buckets", "duration_sum", "size_sum", "statuses")

    def __init__(self, buckets: int) -> None:
        self.statuses: dict[int, int] = {}
        self.buckets = [0] * (buckets + 1)  # per bucket, not cumulative; the last is +Inf
        self.duration_sum = 0.0
        self.size_sum = 0.0


class HttpMetrics(Collector):
    """The RED metrics of HTTP requests, kept in plain numbers and exposed as Prometheus families.

    ``medmesh_http_requests_total`` (counter), ``medmesh_http_request_duration_seconds``
    (histogram), ``medmesh_http_response_size_bytes`` (summary) and
    ``medmesh_http_requests_in_progress`` (gauge), as prometheus_client's own types would expose
    them. Only the event loop records requests, so the numbers need none of the locks those types
    take on every update (seven per request, a tenth of the middleware stack of a request); a
    scrape reads a snapshot (copies of plain lists and dicts, each atomic under the GIL).
    """

    def __init__(self, service: str, buckets: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.service = service
        self.bounds = buckets
        self._le = [floatToGoString(b) for b in buckets] + ["+Inf"]  # type: ignore[no-untyped-call]
        self.series: dict[tuple[str, str], _RouteSeries] = {}
        self.in_progress: dict[str, int] = {}

    def started(self, method: str) -> None:
        self.in_progress[method] = self.in_progress.get(method, 0) + 1

    def finished(
        self, method: str, route: str, status: int, seconds: float, response_bytes: int
    ) -> None:
        self.in_progress[method] -= 1
        series = self.series.get((method, route))
        if series is None:
            series = self.series[(method, route)] = _RouteSeries(len(self.bounds))
        series.statuses[status] = series.statuses.get(status, 0) + 1
        series.buckets[bisect_left(self.bounds, seconds)] += 1  # le: seconds <= bound
        series.duration_sum += seconds
        series.size_sum += response_bytes

    def collect(self) -> Iterator[Metric]:
        route_labels = ["service", "method", "route"]
        requests = CounterMetricFamily(
            "medmesh_http_requests",
            "HTTP requests by route template, method and status.",
            labels=[*route_labels, "status"],
        )
        duration = HistogramMetricFamily(
            "medmesh_http_request_duration_seconds",
            "HTTP request duration by route template.",
            labels=route_labels,
        )
        sizes = SummaryMetricFamily(
            "medmesh_http_response_size_bytes",
            "HTTP response body sizes by route template.",
            labels=route_labels,
        )
        in_progress = GaugeMetricFamily(
            "medmesh_http_requests_in_progress",
            "HTTP requests being served.",
            labels=["service", "method"],
        )
        for (method, route), series in list(self.series.items()):
            statuses, buckets = dict(series.statuses), list(series.buckets)
            labels = [self.service, method, route]
            for status, count in sorted(statuses.items()):
                requests.add_metric([*labels, str(status)], count)
            cumulative = list(accumulate(buckets))
            duration.add_metric(
                labels, list(zip(self._le, cumulative, strict=True)), series.duration_sum
            )
            sizes.add_metric(labels, sum(statuses.values()), series.size_sum)
        for method, count in list(self.in_progress.items()):
            in_progress.add_metric([self.service, method], count)
        yield from (requests, duration, sizes, in_progress)


class ServiceMetrics:
    """The registry of one service app and its RED metrics."""

    def __init__(self, service: str, registry: CollectorRegistry | None = None) -> None:
        self.service = service
        self.registry = registry or CollectorRegistry(auto_describe=True)
        if registry is None:
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
            GCCollector(registry=self.registry)
        self.http = HttpMetrics(service)
        self.registry.register(self.http)
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


class MetricsMiddleware:
    """Pure ASGI middleware recording RED metrics for every HTTP request (see :class:`HttpMetrics`)."""

    def __init__(
        self,
        app: ASGIApp,
        metrics: ServiceMetrics,
        skip_paths: frozenset[str] = frozenset({"/metrics"}),
    ) -> None:
        self.app = app
        self.http = metrics.http
        self.skip_paths = skip_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.skip_paths:
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        self.http.started(method)
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
            self.http.finished(method, route_template(scope), status, elapsed, size)
