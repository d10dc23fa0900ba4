"""Slow and oversized requests against a real server: the header deadline (408), the header size
limit (431), the body deadline (408 in the API's format) and keep-alive connections in a drain."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import ClassVar

import httpx
import orjson
import pytest
from fastapi import APIRouter, FastAPI, Request
from pydantic import BaseModel
from pydantic_settings import SettingsConfigDict

from medmesh.platform.app import create_service_app
from medmesh.platform.config import ServiceSettings
from tests.platform.guarded_server import guarded_server, read_response, read_to_end

HEAD_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"connection: close\r\ncontent-length: 44\r\n\r\nthe request line and headers came too slowly"
)
HEAD_TOO_LARGE_RESPONSE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain; charset=utf-8"
    b"\r\nconnection: close\r\ncontent-length: 37\r\n\r\nthe request line and headers are too large"
)


class DemoSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="MEDMESH_DEMO_", extra="ignore")
    service_name: ClassVar[str] = "demo"


class Note(BaseModel):
    text: str


def demo_router() -> APIRouter:
    router = APIRouter()

    @router.post("/notes")
    async def post_note(note: Note) -> dict[str, str]:
        return {"text": note.text}

    @router.get("/slow")
    async def slow(request: Request) -> dict[str, bool]:
        request.app.state.slow_started.set()
        await asyncio.sleep(0.5)
        return {"done": True}

    return router


@pytest.fixture
async def demo_app(tmp_path: Path) -> AsyncIterator[FastAPI]:
    settings = DemoSettings(
        database_url=f"sqlite+medmesh:///{tmp_path / 'demo.db'}", body_read_timeout=0.5
    )
    app = create_service_app(
        settings,
        title="demo",
        version="0",
        description="demo",
        routers=[demo_router()],
        verify_tokens=False,
    )
    app.state.slow_started = asyncio.Event()
    async with app.router.lifespan_context(app):
        yield app


async def test_request_heads_sent_too_slowly_get_408_and_their_connections_are_closed(
    demo_app: FastAPI,
) -> None:
    async with guarded_server(demo_app, header_read_timeout=0.3) as (port, _):
        connections = [await asyncio.open_connection("127.0.0.1", port) for _ in range(40)]
        for number, (_, writer) in enumerate(connections):
            if number % 2:  # half send part of a head, half send nothing at all
                writer.write(b"GET /healthz HTTP/1.1\r\nHost: demo\r\nX-Slow: ")
        received = await asyncio.gather(*(read_to_end(reader) for reader, _ in connections))
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            after = await http.get("/healthz")
        for _, writer in connections:
            writer.close()

    assert received == [HEAD_TIMEOUT_RESPONSE] * 40
    assert after.status_code == 200


async def test_a_request_head_over_the_size_limit_gets_431_and_the_connection_closed(
    demo_app: FastAPI,
) -> None:
    async with guarded_server(demo_app, max_header_bytes=65_536) as (port, _):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"GET /healthz HTTP/1.1\r\nHost: demo\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n"
        )
        refused = await read_to_end(reader)
        writer.close()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            within = await http.get("/healthz", headers={"X-Big": "a" * 30_000})

    assert refused == HEAD_TOO_LARGE_RESPONSE
    assert within.status_code == 200


async def test_a_request_head_sent_in_pieces_is_measured_whole(demo_app: FastAPI) -> None:
    async with guarded_server(demo_app, max_header_bytes=4096) as (port, _):
        # Over the limit, 512 bytes at a time: refused once the pieces add up to more.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: demo\r\nX-Big: ")
        for _ in range(12):
            writer.write(b"a" * 512)
            await writer.drain()
            await asyncio.sleep(0.01)
        refused = await read_to_end(reader)
        writer.close()
        # Within the limit, in pieces: answered, and the connection serves a second request.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        head = b"GET /healthz HTTP/1.1\r\nHost: demo\r\nX-Big: " + b"a" * 3000 + b"\r\n\r\n"
        for start in range(0, len(head), 512):
            writer.write(head[start : start + 512])
            await writer.drain()
            await asyncio.sleep(0.01)
        first = await read_response(reader)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: demo\r\n\r\n")
        second = await read_response(reader)
        writer.close()
        # A head just within the limit whose blank line straddles two reads, its body (which
        # would take it over, counted as head) in the second.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        body = b'{"text": "' + b"b" * 500 + b'"}'
        opening = b"POST /notes HTTP/1.1\r\nHost: demo\r\nContent-Type: application/json\r\n"
        opening += b"Content-Length: %d\r\nX-Pad: " % len(body)
        opening += b"p" * (4090 - len(opening)) + b"\r\n\r"
        writer.write(opening)
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(b"\n" + body)
        third = await read_response(reader)
        writer.close()

    assert refused == HEAD_TOO_LARGE_RESPONSE
    assert (first[0], second[0]) == (b"HTTP/1.1 200 OK", b"HTTP/1.1 200 OK")
    assert third[0] == b"HTTP/1.1 200 OK"
    assert orjson.loads(third[2]) == {"text": "b" * 500}


async def test_the_head_deadline_restarts_with_each_request_on_a_kept_alive_connection(
    demo_app: FastAPI,
) -> None:
    async with guarded_server(demo_app, header_read_timeout=0.3) as (port, _):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: demo\r\n\r\n")
        first = await read_response(reader)
        await asyncio.sleep(0.5)  # idle longer than the deadline: keep-alive, not a slow head
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: demo\r\n\r\n")
        second = await read_response(reader)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: demo\r\nX-Slow: ")
        refused = await read_to_end(reader)
        writer.close()

    assert (first[0], second[0]) == (b"HTTP/1.1 200 OK", b"HTTP/1.1 200 OK")
    assert refused == HEAD_TIMEOUT_RESPONSE


async def test_a_body_sent_too_slowly_gets_408_in_the_api_format_and_the_connection_closed(
    demo_app: FastAPI,
) -> None:
    async with guarded_server(demo_app) as (port, _):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"POST /notes HTTP/1.1\r\nHost: demo\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n" + b'{"text": "'
        )
        status, headers, body = await read_response(reader)
        rest = await read_to_end(reader)
        writer.close()

    assert status == b"HTTP/1.1 408 Request Timeout"
    assert headers["connection"] == "close"
    assert headers["content-type"] == "application/problem+json"
    assert orjson.loads(body) == {
        "type": "about:blank",
        "title": "Request Timeout",
        "status": 408,
        "code": "request_timeout",
        "detail": "the request body did not arrive within 0.5 s",
    }
    assert rest == b""


async def test_keep_alive_connections_are_told_to_close_once_the_drain_starts(
    demo_app: FastAPI,
) -> None:
    async with guarded_server(demo_app, drain_seconds=1.5) as (port, server):
        idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", port)
        idle_writer.write(b"GET /healthz HTTP/1.1\r\nHost: demo\r\n\r\n")
        before = await read_response(idle_reader)
        busy_reader, busy_writer = await asyncio.open_connection("127.0.0.1", port)
        busy_writer.write(b"GET /slow HTTP/1.1\r\nHost: demo\r\n\r\n")
        await demo_app.state.slow_started.wait()  # /slow is in flight

        server.handle_exit(signal.SIGTERM, None)
        await asyncio.sleep(0)  # the drain starts on the loop's next turn
        fresh_reader, fresh_writer = await asyncio.open_connection("127.0.0.1", port)
        fresh_writer.write(b"GET /healthz HTTP/1.1\r\nHost: demo\r\n\r\n")
        during = await read_response(fresh_reader)
        busy = await read_response(busy_reader)
        ends = [await read_to_end(r) for r in (idle_reader, fresh_reader, busy_reader)]

        # A keep-alive client during the drain: each answer tells it to close, so it opens a
        # fresh connection for the next request instead of reusing one the stop would close.
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            answers = [await http.get("/healthz") for _ in range(5)]
        for writer in (idle_writer, busy_writer, fresh_writer):
            writer.close()

    assert before[0] == b"HTTP/1.1 200 OK"
    assert "connection" not in before[1]
    assert during[0] == b"HTTP/1.1 200 OK"
    assert during[1]["connection"] == "close"
    assert busy[0] == b"HTTP/1.1 200 OK"
    assert busy[1]["connection"] == "close"
    assert orjson.loads(busy[2]) == {"done": True}
    # The idle connection was closed at the drain's start, unasked; the others after their answer.
    assert ends == [b"", b"", b""]
    assert [(a.status_code, a.headers["connection"]) for a in answers] == [(200, "close")] * 5
