"""OpenTelemetry tracing.

Every service gets a tracer provider named after it; FastAPI, httpx and SQLAlchemy
are instrumented, and the W3C ``traceparent`` header is propagated on every
outgoing call. Spans are exported over OTLP/HTTP only when an endpoint is
configured (``MEDMESH_OTLP_ENDPOINT``); otherwise they are created (so log lines
carry trace ids) but exported nowhere. Span attributes never hold PHI: URLs are
recorded by route template, and SQL statements without their parameters.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

_provider: TracerProvider | None = None


def configure_tracing(
    service: str, otlp_endpoint: str = "", exporter: SpanExporter | None = None
) -> TracerProvider:
    """Install the process-wide tracer provider (once) and return it."""
    global _provider
    if _provider is not None:
        if exporter is not None:
            _provider.add_span_processor(BatchSpanProcessor(exporter))
        return _provider
    provider = TracerProvider(resource=Resource.create({"service.name": f"medmesh-{service}"}))
    if exporter is None and otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=otlp_endpoint.rstrip("/") + "/v1/traces")
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _provider = provider
    _instrument_clients()
    return provider


def _instrument_clients() -> None:
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    HTTPXClientInstrumentor().instrument()


def instrument_app(app: FastAPI, excluded_urls: str = "healthz,readyz,metrics") -> None:
    """Trace every request of ``app`` with spans named by route template."""
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app,
        excluded_urls=excluded_urls,
        tracer_provider=_provider,
        server_request_hook=_drop_query,
        exclude_spans=["receive", "send"],
    )


def instrument_engine(engine: Any) -> None:
    """Trace SQL statements (without their parameters) of a SQLAlchemy engine."""
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    SQLAlchemyInstrumentor().instrument(
        engine=engine, tracer_provider=_provider, enable_commenter=False
    )


def _drop_query(span: Any, scope: dict[str, Any]) -> None:
    # Query strings can carry PHI (FHIR search parameters): keep only the route.
    if span is not None and span.is_recording():
        span.set_attribute("url.query", "")
        span.set_attribute("http.target", scope.get("path", ""))


def tracer(name: str = "medmesh") -> trace.Tracer:
    """A tracer for domain spans."""
    return trace.get_tracer(name)
