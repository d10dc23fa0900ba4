"""Running a service process with graceful drain.

On SIGTERM (or SIGINT) the service first turns not-ready (``/readyz`` answers
503) and keeps serving for ``drain_seconds`` so load balancers stop sending it
traffic; then uvicorn stops accepting connections, lets in-flight requests
finish, and the lifespan shuts the workers down (the audit trail is flushed).
A second signal stops at once. Once the drain starts every response says
``Connection: close`` and idle keep-alive connections are closed while the service still
accepts new ones, so no client sends a request on a connection the stop then closes.

The HTTP protocol is httptools' (:class:`GuardedHttpProtocol`), pinned whatever else is installed:
a request's line and headers must arrive within ``header_read_timeout`` (a slow-header client
gets 408 and the connection is closed; uvicorn has no such timeout) and be at most
``max_header_bytes`` long (431). The body's deadline is
:class:`~medmesh.platform.web.BodyLimitMiddleware`'s, answered in the API's own format.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import uvicorn
from fastapi import FastAPI
from uvicorn.config import Config
from uvicorn.protocols.http.flow_control import CLOSE_HEADER
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from medmesh.platform.logging import get_logger

log = get_logger("medmesh.platform.web.server")


#: Written straight to the socket: the app cannot answer a request the parser has not completed.
_HEAD_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"connection: close\r\ncontent-length: 44\r\n\r\n"
    b"the request line and headers came too slowly"
)
_HEAD_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain; charset=utf-8"
    b"\r\nconnection: close\r\ncontent-length: 37\r\n\r\nthe request line and headers are too large"
)
#: How long a refused connection's further bytes are read and dropped before it is closed: a
#: close with unread bytes sends a reset, which can discard the answer before the client reads it.
LINGER_SECONDS = 2.0


class GuardedConfig(Config):
    """uvicorn's settings plus the head deadline and size limit :class:`GuardedHttpProtocol`
    enforces."""

    def __init__(
        self,
        app: FastAPI,
        *,
        header_read_timeout: float,
        max_header_bytes: int = 65_536,
        **kwargs: object,
    ) -> None:
        super().__init__(app, http=GuardedHttpProtocol, **kwargs)  # type: ignore[arg-type]
        self.header_read_timeout = header_read_timeout
        self.max_header_bytes = max_header_bytes


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline and a size limit on a request's line and
    headers.

    The deadline runs from the connection's start, or from the first byte of a request that
    follows a response, to the request's last header line; the size counts the line and
    headers however they arrive (the parser itself keeps a header of any length).
    """

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.header_read_timeout: float = getattr(config, "header_read_timeout", 10.0)
        self.max_header_bytes: int = getattr(config, "max_header_bytes", 65_536)
        #: A request's first bytes are in and its last header line is not.
        self.head_pending = False
        #: A request's head is in and its message is not complete.
        self._in_body = False
        #: How many bytes of an incomplete head arrived, and the last two of them (a head's end
        #: can straddle two reads): its size is counted without keeping the head.
        self._head_bytes = 0
        self._head_tail = b""
        self._head_timer: asyncio.TimerHandle | None = None
        self._refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # read and dropped until the linger ends
        head = not self._in_body
        if head and self._head_too_large(data):
            self._refuse(_HEAD_TOO_LARGE)
            return
        super().data_received(data)
        if head and self.head_pending:
            self._head_bytes += len(data)
            self._head_tail = (self._head_tail + data)[-2:]
        self._follow_head()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.head_pending = True

    def on_headers_complete(self) -> None:
        self.head_pending = False
        self._in_body = True
        self._head_bytes = 0
        self._head_tail = b""
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_body = False
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._follow_head()

    def eof_received(self) -> None:
        if self._refused:
            self.transport.close()

    def _head_too_large(self, data: bytes) -> bool:
        """Whether the head that ``data`` continues (or starts) is, or will be, over the limit."""
        seen, tail = self._head_bytes, self._head_tail
        pending = tail + data if tail else data
        room = self.max_header_bytes - seen + len(tail)  # of the head's bytes, in ``pending``
        end = _head_end(pending, room)
        return (end < 0 and len(pending) > room) or end > room

    def _follow_head(self) -> None:
        """Arm the header deadline while part of a request head waits; drop it once it is in."""
        if self.transport.is_closing():
            self._cancel_head_timer()
        elif self.head_pending:
            if self._head_timer is None:
                self._arm_head_timer()
        else:
            self._cancel_head_timer()

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(self.header_read_timeout, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        waiting = self.head_pending or self.cycle is None
        if waiting and not self.transport.is_closing():
            self._refuse(_HEAD_TIMEOUT)

    def _refuse(self, response: bytes) -> None:
        """Answer a request the parser never completed, then close once the client has had it."""
        self._refused = True
        self._cancel_head_timer()
        self._unset_keepalive_if_required()
        self.transport.write(response)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER_SECONDS, self.transport.close)


def _head_end(data: bytes, limit: int) -> int:
    """Where the blank line ending a request head starts (LF or CRLF line ends), or -1."""
    stop = limit + 4
    ends = [
        found
        for found in (data.find(b"\n\r\n", 0, stop), data.find(b"\n\n", 0, stop))
        if found >= 0
    ]
    return min(ends) if ends else -1


class DrainingServer(uvicorn.Server):
    """A uvicorn server that turns not-ready and waits before it stops."""

    def __init__(self, config: uvicorn.Config, app: FastAPI, drain_seconds: float) -> None:
        super().__init__(config)
        self.fastapi_app = app
        self.drain_seconds = drain_seconds
        self._draining = False

    async def on_tick(self, counter: int) -> bool:
        should_exit = await super().on_tick(counter)
        if self._draining:
            self._say_close()  # on_tick rebuilds the default headers every second
        return should_exit

    def start_drain(self) -> None:
        """Tell every client to close: the next response on each connection says
        ``Connection: close``, and idle keep-alive connections are closed now, while the
        service still accepts new connections (a request racing the close can be sent again)."""
        self._say_close()
        for connection in list(self.server_state.connections):
            if not isinstance(connection, GuardedHttpProtocol):
                continue
            cycle = connection.cycle
            if cycle is None or cycle.response_complete:
                if not connection.head_pending:
                    connection.shutdown()
            elif not cycle.response_started and CLOSE_HEADER not in cycle.default_headers:
                cycle.default_headers = [*cycle.default_headers, CLOSE_HEADER]

    def _say_close(self) -> None:
        headers = self.server_state.default_headers
        if CLOSE_HEADER not in headers:
            self.server_state.default_headers = [*headers, CLOSE_HEADER]

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._draining or self.drain_seconds <= 0:
            super().handle_exit(sig, frame)
            return
        self._draining = True
        self.fastapi_app.state.draining = True
        log.info("draining", seconds=self.drain_seconds)
        # A signal handler may run while the loop sleeps in select(): the thread-safe call
        # wakes it so the timer is armed at once.
        loop = asyncio.get_running_loop()
        loop.call_soon_threadsafe(self.start_drain)
        loop.call_soon_threadsafe(
            loop.call_later, self.drain_seconds, super().handle_exit, sig, frame
        )

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Handle SIGINT/SIGTERM while serving; a drained stop then exits 0.

        uvicorn re-raises the captured signal after its graceful shutdown, so the process
        would die "killed by SIGTERM" after a clean drain; a supervisor (Kubernetes, systemd,
        ``medmesh up``) should see a successful exit instead.
        """
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


def server_config(
    app: FastAPI,
    host: str,
    port: int,
    *,
    request_timeout: float = 30.0,
    header_read_timeout: float = 10.0,
    max_header_bytes: int = 65_536,
    lifespan: str = "on",
) -> GuardedConfig:
    """The uvicorn settings of a service: httptools with the header deadline and size limit."""
    return GuardedConfig(
        app,
        header_read_timeout=header_read_timeout,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=int(request_timeout),
        max_header_bytes=max_header_bytes,
        lifespan=lifespan,
        ws="none",
    )


def run_app(
    app: FastAPI,
    host: str,
    port: int,
    *,
    drain_seconds: float = 5.0,
    request_timeout: float = 30.0,
    header_read_timeout: float = 10.0,
    max_header_bytes: int = 65_536,
) -> None:
    """Serve ``app`` until SIGTERM/SIGINT, draining first."""
    config = server_config(
        app,
        host,
        port,
        request_timeout=request_timeout,
        header_read_timeout=header_read_timeout,
        max_header_bytes=max_header_bytes,
    )
    DrainingServer(config, app, drain_seconds).run()
