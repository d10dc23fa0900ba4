"""Running a service process with graceful drain.

On SIGTERM (or SIGINT) the service first turns not-ready (``/readyz`` answers
503) and keeps serving for ``drain_seconds`` so load balancers stop sending it
traffic; then uvicorn stops accepting connections, lets in-flight requests
finish, and the lifespan shuts the workers down (the audit trail is flushed).
A second signal stops at once.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

import uvicorn
from fastapi import FastAPI

from medmesh.platform.logging import get_logger

log = get_logger("medmesh.platform.server")


class DrainingServer(uvicorn.Server):
    """A uvicorn server that turns not-ready and waits before it stops."""

    def __init__(self, config: uvicorn.Config, app: FastAPI, drain_seconds: float) -> None:
        super().__init__(config)
        self.fastapi_app = app
        self.drain_seconds = drain_seconds
        self._draining = False

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


def run_app(
    app: FastAPI, host: str, port: int, *, drain_seconds: float = 5.0, request_timeout: float = 30.0
) -> None:
    """Serve ``app`` until SIGTERM/SIGINT, draining first."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=int(request_timeout),
        lifespan="on",
    )
    DrainingServer(config, app, drain_seconds).run()
