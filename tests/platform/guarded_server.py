"""A service served in the test's own loop by the platform's server (httptools with its guards),
and raw-socket helpers for what an HTTP client library would hide."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from medmesh.platform.web import DrainingServer, server_config

#: Only keeps a broken test from hanging; no assertion depends on it.
HANG_GUARD = 60.0


@asynccontextmanager
async def guarded_server(
    app: FastAPI, *, drain_seconds: float = 0.0, lifespan: str = "off", **limits: Any
) -> AsyncIterator[tuple[int, DrainingServer]]:
    """Serve ``app`` with :func:`server_config` on a free local port; yield the port and server."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    config = server_config(app, "127.0.0.1", port, lifespan=lifespan, **limits)
    server = DrainingServer(config, app, drain_seconds)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                raise RuntimeError("the server did not start")
            await asyncio.sleep(0.01)
        yield port, server
    finally:
        server.should_exit = True
        await task
        sock.close()


async def read_to_end(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes the connection."""
    return await asyncio.wait_for(reader.read(), HANG_GUARD)


async def read_response(reader: asyncio.StreamReader) -> tuple[bytes, dict[str, str], bytes]:
    """One response (status line, lower-cased headers, ``Content-Length`` body) off a connection
    that may stay open."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HANG_GUARD)
    status, *lines = head.decode("latin-1").rstrip("\r\n").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    body = await asyncio.wait_for(
        reader.readexactly(int(headers.get("content-length", "0"))), HANG_GUARD
    )
    return status.encode(), headers, body
