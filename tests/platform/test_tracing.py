import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from pydantic_settings import SettingsConfigDict

from medmesh.platform.app import create_service_app
from medmesh.platform.config import ServiceSettings
from medmesh.platform.testing import app_client
from medmesh.platform.tracing import configure_tracing, tracer

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


class DemoSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="MEDMESH_DEMO_", extra="ignore")
    service_name: ClassVar[str] = "demo"


class HeaderRecorder:
    """A real HTTP server on a free port that records the headers of every request."""

    def __init__(self) -> None:
        self.headers: list[dict[str, str]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.headers.append({k.lower(): v for k, v in self.headers.items()})
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/peer"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


class Spans:
    def __init__(self, provider: TracerProvider, exporter: InMemorySpanExporter) -> None:
        self.provider = provider
        self.exporter = exporter

    def finished(self) -> list[ReadableSpan]:
        self.provider.force_flush()
        return list(self.exporter.get_finished_spans())


@pytest.fixture(scope="module")
def module_spans() -> Spans:
    # The tracer provider is process-wide and installed once: this module attaches one
    # in-memory exporter to it (whoever installed it) and clears it between tests.
    exporter = InMemorySpanExporter()
    provider = configure_tracing("demo", exporter=exporter)
    return Spans(provider, exporter)


@pytest.fixture
def spans(module_spans: Spans) -> Spans:
    module_spans.finished()
    module_spans.exporter.clear()
    return module_spans


@pytest.fixture
def peer() -> Iterator[HeaderRecorder]:
    recorder = HeaderRecorder()
    yield recorder
    recorder.close()


def demo_app(tmp_path: Path, peer_url: str = "") -> FastAPI:
    router = APIRouter()

    @router.get("/items/{item_id}")
    async def get_item(item_id: str) -> dict[str, str]:
        return {"id": item_id}

    @router.get("/call-peer")
    async def call_peer(name: str = "") -> dict[str, int]:
        async with httpx.AsyncClient() as http:
            response = await http.get(peer_url, params={"name": name} if name else None)
        return {"status": response.status_code}

    return create_service_app(
        DemoSettings(database_url=f"sqlite+medmesh:///{tmp_path / 'demo.db'}"),
        title="demo",
        version="0",
        description="demo",
        routers=[router],
        verify_tokens=False,
    )


def server_spans(spans: list[ReadableSpan]) -> list[ReadableSpan]:
    return [s for s in spans if s.kind == SpanKind.SERVER]


async def test_request_produces_a_server_span_named_by_route(tmp_path: Path, spans: Spans) -> None:
    async with app_client(demo_app(tmp_path)) as client:
        response = await client.get("/items/42")

    assert response.status_code == 200
    [span] = server_spans(spans.finished())
    assert span.name == "GET /items/{item_id}"
    assert span.attributes is not None
    assert span.attributes.get("http.route") == "/items/{item_id}"


async def test_health_probes_are_not_traced(tmp_path: Path, spans: Spans) -> None:
    async with app_client(demo_app(tmp_path)) as client:
        await client.get("/healthz")
        await client.get("/readyz")
        await client.get("/metrics")

    assert server_spans(spans.finished()) == []


async def test_incoming_traceparent_is_continued(tmp_path: Path, spans: Spans) -> None:
    headers = {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"}
    async with app_client(demo_app(tmp_path)) as client:
        await client.get("/items/7", headers=headers)

    [span] = server_spans(spans.finished())
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert span.parent is not None
    assert format(span.parent.span_id, "016x") == PARENT_ID


async def call_peer_as_traced_caller(tmp_path: Path, peer: HeaderRecorder) -> list[str]:
    """Call a route that calls ``peer``, with a caller's ``traceparent``; the one peer received."""
    headers = {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"}
    async with app_client(demo_app(tmp_path, peer.url)) as client:
        response = await client.get("/call-peer", headers=headers)
    assert response.json() == {"status": 204}
    [sent] = peer.headers
    return sent["traceparent"].split("-")


async def test_outgoing_calls_carry_traceparent(
    tmp_path: Path, spans: Spans, peer: HeaderRecorder
) -> None:
    _version, trace_id, parent_id, _flags = await call_peer_as_traced_caller(tmp_path, peer)

    assert trace_id == TRACE_ID
    client_spans = [s for s in spans.finished() if s.name == "GET" and s.kind == SpanKind.CLIENT]
    assert [format(s.context.span_id, "016x") for s in client_spans] == [parent_id]


async def test_outgoing_calls_outside_a_request_start_a_trace(
    spans: Spans, peer: HeaderRecorder
) -> None:
    with tracer("test").start_as_current_span("job") as job:
        async with httpx.AsyncClient() as http:
            await http.get(peer.url)

    [sent] = peer.headers
    assert sent["traceparent"].split("-")[1] == format(job.get_span_context().trace_id, "032x")


async def test_span_attributes_never_hold_the_query_string(tmp_path: Path, spans: Spans) -> None:
    async with app_client(demo_app(tmp_path)) as client:
        response = await client.get("/items/42?name=Jane&birthdate=1970-01-01")

    assert response.status_code == 200
    finished = spans.finished()
    assert server_spans(finished)
    for span in finished:
        for key, val in (span.attributes or {}).items():
            assert "Jane" not in str(val), (span.name, key, val)
            assert "1970-01-01" not in str(val), (span.name, key, val)
        for event in span.events:
            assert "Jane" not in str(event.attributes)


async def test_outgoing_span_attributes_never_hold_the_query_string(
    tmp_path: Path, spans: Spans, peer: HeaderRecorder
) -> None:
    async with app_client(demo_app(tmp_path, peer.url)) as client:
        response = await client.get("/call-peer?name=Jane")

    assert response.json() == {"status": 204}
    finished = spans.finished()
    assert [s for s in finished if s.kind == SpanKind.CLIENT and s.name == "GET"]
    for span in finished:
        for key, val in (span.attributes or {}).items():
            assert "Jane" not in str(val), (span.name, key, val)


async def test_sql_statements_are_spans_when_the_process_exports(
    tmp_path: Path, spans: Spans
) -> None:
    # The exporter is attached (module_spans) before the app is built, as an OTLP endpoint is.
    app = demo_app(tmp_path)
    async with app_client(app) as client:
        assert (await client.get("/readyz")).status_code == 200
    statements = [s for s in spans.finished() if s.kind == SpanKind.CLIENT]
    assert statements, "no statement span"
    assert all((s.attributes or {}).get("db.system") == "sqlite" for s in statements)


@pytest.fixture
def not_exporting(monkeypatch: pytest.MonkeyPatch) -> None:
    """The process as it runs without an OTLP endpoint: spans carry ids but are not recorded."""
    from medmesh.platform import tracing

    monkeypatch.setattr(tracing._sampler, "exporting", False)


@pytest.mark.usefixtures("not_exporting")
async def test_without_an_exporter_the_callers_trace_continues_unrecorded(
    tmp_path: Path, spans: Spans, peer: HeaderRecorder
) -> None:
    _version, trace_id, span_id, flags = await call_peer_as_traced_caller(tmp_path, peer)

    assert trace_id == TRACE_ID
    assert span_id not in (PARENT_ID, "0" * 16)
    assert flags == "00"
    assert server_spans(spans.finished()) == []


@pytest.mark.usefixtures("not_exporting")
async def test_without_an_exporter_each_request_starts_its_own_trace(
    tmp_path: Path, spans: Spans, peer: HeaderRecorder
) -> None:
    async with app_client(demo_app(tmp_path, peer.url)) as client:
        await client.get("/call-peer")
        await client.get("/call-peer")

    first, second = (h["traceparent"].split("-")[1] for h in peer.headers)
    assert first != second
    assert "0" * 32 not in (first, second)
    assert spans.finished() == []
