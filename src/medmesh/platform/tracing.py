"""OpenTelemetry tracing.

Every service gets a tracer provider named after it. Incoming requests are traced
by :class:`ServerTracingMiddleware` (a lean pure-ASGI middleware: one server span
per request, named by route template, continuing an incoming W3C ``traceparent``);
httpx and SQLAlchemy are instrumented, and ``traceparent`` is propagated on every
outgoing call. Spans are sampled and exported over OTLP/HTTP only when an
endpoint is configured (``MEDMESH_OTLP_ENDPOINT``, ratio ``TRACE_SAMPLE_RATIO``);
otherwise they are not recorded, but still carry ids so log lines and outgoing
calls can be correlated. Span attributes never hold PHI: the path without its
query string, the route template, SQL statements without their parameters.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import Attributes
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_provider: TracerProvider | None = None


_DROP = SamplingResult(Decision.DROP)


class ExportSwitchSampler(Sampler):
    """Records spans only once somewhere exports them; until then spans carry ids but cost little."""

    def __init__(self, ratio: float = 1.0) -> None:
        self.exporting = False
        self._sampled = ParentBased(TraceIdRatioBased(ratio))

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        if not self.exporting:
            return _DROP
        return self._sampled.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"ExportSwitchSampler(exporting={self.exporting})"


_sampler = ExportSwitchSampler()


def configure_tracing(
    service: str,
    otlp_endpoint: str = "",
    exporter: SpanExporter | None = None,
    sample_ratio: float = 1.0,
) -> TracerProvider:
    """Install the process-wide tracer provider (once) and return it; add an exporter if given."""
    global _provider
    if exporter is None and otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=otlp_endpoint.rstrip("/") + "/v1/traces")
    if _provider is None:
        global _sampler
        _sampler = ExportSwitchSampler(sample_ratio)
        _provider = TracerProvider(
            resource=Resource.create({"service.name": f"medmesh-{service}"}), sampler=_sampler
        )
        trace.set_tracer_provider(_provider)
        _instrument_clients()
    if exporter is not None:
        _provider.add_span_processor(BatchSpanProcessor(exporter))
        _sampler.exporting = True
    return _provider


def _instrument_clients() -> None:
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    HTTPXClientInstrumentor().instrument(
        request_hook=_drop_client_query, async_request_hook=_adrop_client_query
    )


_PROPAGATOR = TraceContextTextMapPropagator()
UNTRACED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def _unrecorded_span(parent: Context | None) -> trace.Span:
    """What the SDK makes of a span its sampler drops, without the SDK's cost per request (see
    docs/decisions/0018-tracing-records-only-when-exporting.md): new ids, the caller's trace id
    kept."""
    caller = trace.get_current_span(parent).get_span_context() if parent is not None else None
    trace_id = caller.trace_id if caller is not None and caller.is_valid else 0
    while not trace_id:
        trace_id = random.getrandbits(128)
    span_id = 0
    while not span_id:
        span_id = random.getrandbits(64)
    return trace.NonRecordingSpan(
        SpanContext(trace_id, span_id, is_remote=False, trace_flags=TraceFlags(TraceFlags.DEFAULT))
    )


class ServerTracingMiddleware:
    """One SERVER span per HTTP request, named ``METHOD /route/{template}``.

    Continues the caller's ``traceparent``; records method, path (never the query
    string: FHIR searches carry PHI there), route template and status.
    """

    def __init__(self, app: ASGIApp, untraced: frozenset[str] = UNTRACED_PATHS) -> None:
        self.app = app
        self.untraced = untraced
        self._tracer = trace.get_tracer("medmesh.http")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.untraced:
            await self.app(scope, receive, send)
            return
        carrier = {}
        for name, value in scope["headers"]:
            if name == b"traceparent" or name == b"tracestate":
                carrier[name.decode()] = value.decode("latin-1")
        parent = _PROPAGATOR.extract(carrier) if carrier else None
        method = scope["method"]
        span: trace.Span
        if _sampler.exporting:
            span = self._tracer.start_span(
                method,
                context=parent,
                kind=SpanKind.SERVER,
                attributes={
                    "http.request.method": method,
                    "url.path": scope["path"],
                    "url.scheme": scope["scheme"],
                },
            )
        else:
            span = _unrecorded_span(parent)
            token = otel_context.attach(trace.set_span_in_context(span, parent))
            try:
                await self.app(scope, receive, send)
            finally:
                otel_context.detach(token)
            return
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        token = otel_context.attach(trace.set_span_in_context(span, parent))
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            otel_context.detach(token)
            if span.is_recording():
                route = getattr(scope.get("route"), "path", None)
                if isinstance(route, str):
                    span.set_attribute("http.route", route)
                    span.update_name(f"{method} {route}")
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
            span.end()


def instrument_engine(engine: Any) -> None:
    """Trace SQL statements (without their parameters) of a SQLAlchemy engine, when this process
    exports spans (an exporter or OTLP endpoint is configured before the app is built).

    Statement spans that nobody records still cost their creation on every statement (see
    docs/decisions/0018-tracing-records-only-when-exporting.md) and carry nothing a log line
    needs: the request's server span already gives it a trace id.
    """
    if not _sampler.exporting:
        return
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    SQLAlchemyInstrumentor().instrument(
        engine=engine, tracer_provider=_provider, enable_commenter=False
    )


def _without_query(url: str) -> str:
    return url.split("?", 1)[0]


def _drop_client_query(span: Any, request: Any) -> None:
    # Outgoing calls (a FHIR search on phi) carry the same kind of query strings.
    if span is None or not span.is_recording():
        return
    url = _without_query(str(request.url))
    attributes = getattr(span, "attributes", None) or {}
    for key in ("http.url", "url.full"):
        if key in attributes:
            span.set_attribute(key, url)


async def _adrop_client_query(span: Any, request: Any) -> None:
    _drop_client_query(span, request)


def tracer(name: str = "medmesh") -> trace.Tracer:
    """A tracer for domain spans."""
    return trace.get_tracer(name)
