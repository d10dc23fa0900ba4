"""Request bodies: larger than the service's limit refused with 413 before the application reads
them, not arriving within ``body_read_timeout`` refused with 408 (the connection is then closed)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from medmesh.platform.errors import MedmeshError, PayloadTooLarge

ErrorResponder = Callable[[Request, MedmeshError], Any]

#: The body deadline of an app whose settings do not say (``ServiceSettings.body_read_timeout``).
BODY_READ_TIMEOUT = 30.0


class BodyReadTimeout(MedmeshError, HTTPException):  # type: ignore[misc]
    """408: the request body did not arrive in time; the connection is closed after the answer.

    Also an ``HTTPException``, because FastAPI turns any other error raised while it parses
    a body into "400 error parsing the body"; the app renders it as the MedmeshError it is."""

    status, code = 408, "request_timeout"

    def __init__(self, seconds: float) -> None:
        message = f"the request body did not arrive within {seconds:g} s"
        close = {"Connection": "close"}
        MedmeshError.__init__(self, message, headers=close)
        HTTPException.__init__(self, 408, message, close)
        self.headers = close


class BodyLimitMiddleware:
    """Refuse request bodies over ``max_bytes`` with 413 (declared or streamed), and bodies
    still incomplete ``read_timeout`` seconds after the request's headers with 408.

    Without ``read_timeout`` the deadline is the app's ``settings.body_read_timeout``
    (``app.state.settings``), else :data:`BODY_READ_TIMEOUT`. A slow body then costs its
    connection, never a write slot or a database connection held for as long as it trickles.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        respond: ErrorResponder,
        read_timeout: float | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.respond = respond
        self.read_timeout = read_timeout

    def _read_timeout(self, scope: Scope) -> float:
        if self.read_timeout is None:
            settings = getattr(getattr(scope.get("app"), "state", None), "settings", None)
            self.read_timeout = float(getattr(settings, "body_read_timeout", BODY_READ_TIMEOUT))
        return self.read_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > self.max_bytes or declared < 0:
                    await self._refuse(scope, receive, send)
                    return
                break
        received = 0
        timeout = self._read_timeout(scope)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        body_done = False

        async def limited_receive() -> Message:
            nonlocal received, body_done
            if body_done:  # later receives wait for the disconnect: no deadline
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise BodyReadTimeout(timeout) from None
            if message["type"] == "http.request":
                body_done = not message.get("more_body", False)
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # An HTTPException, because FastAPI turns any other error raised while it
                    # parses the body into "400 error parsing the body".
                    raise HTTPException(413, f"request body exceeds {self.max_bytes} bytes")
            else:
                body_done = True
            return message

        await self.app(scope, limited_receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        error = PayloadTooLarge(f"request body exceeds {self.max_bytes} bytes")
        response = self.respond(Request(scope, receive), error)
        await response(scope, receive, send)
