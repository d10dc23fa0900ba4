"""Cross-origin requests (the Fetch standard's CORS protocol) on a few named paths, for a few
named origins.

A service's ``/docs`` page asks auth's token endpoint for a token from its own origin; the
browser sends that request only when auth answers its preflight for that origin.
:class:`CrossOriginMiddleware` answers the preflight of an allowed origin (``204``, the methods
and request headers it allows) and names the origin in ``Access-Control-Allow-Origin`` on the
response, errors included, so the page can read them. It never allows credentials (cookies, HTTP
authentication the browser keeps) and never answers ``*``: only origins listed one by one.

A request from any other origin, or to any other path, passes through untouched (a preflight then
gets the app's own answer to ``OPTIONS``, with no CORS headers, and the browser stops there).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Final

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from medmesh.platform.config import canonical_origin

#: The request headers a token request from Swagger UI carries (beyond the CORS-safelisted ones).
TOKEN_REQUEST_HEADERS: Final = ("authorization", "content-type", "accept", "x-requested-with")
#: How long a browser may reuse a preflight's answer.
PREFLIGHT_MAX_AGE_SECONDS: Final = 600


class CrossOriginMiddleware:
    """Pure ASGI middleware answering CORS for ``origins`` on ``paths`` (exact paths)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        origins: Iterable[str],
        paths: Collection[str],
        methods: Collection[str] = ("POST",),
        headers: Collection[str] = TOKEN_REQUEST_HEADERS,
        max_age: int = PREFLIGHT_MAX_AGE_SECONDS,
    ) -> None:
        self.app = app
        self.origins = frozenset(canonical_origin(o) for o in origins)
        self.paths = frozenset(paths)
        self.methods = frozenset(m.upper() for m in methods)
        self.headers = frozenset(h.lower() for h in headers)
        self._preflight_headers = [
            (b"access-control-allow-methods", ", ".join(sorted(self.methods)).encode()),
            (b"access-control-allow-headers", ", ".join(sorted(self.headers)).encode()),
            (b"access-control-max-age", str(max_age).encode()),
            (b"vary", b"Origin"),
            (b"cache-control", b"no-store"),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        request_headers = Headers(scope=scope)
        origin = request_headers.get("origin")
        if origin is None or origin.lower() not in self.origins:
            await self.app(scope, receive, send)
            return
        origin = origin.lower()
        requested_method = request_headers.get("access-control-request-method")
        if scope["method"] == "OPTIONS" and requested_method is not None:
            if self._preflight_allowed(requested_method, request_headers):
                await self._answer_preflight(origin, send)
                return
            await self.app(scope, receive, send)
            return
        allow = (b"access-control-allow-origin", origin.encode())

        async def send_with_origin(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != b"vary"]
                vary = [v for k, v in message.get("headers", ()) if k.lower() == b"vary"]
                headers += [allow, (b"vary", b", ".join([*vary, b"Origin"]))]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_origin)

    def _preflight_allowed(self, method: str, request_headers: Headers) -> bool:
        if method.upper() not in self.methods:
            return False
        asked = request_headers.get("access-control-request-headers", "")
        names = {name.strip().lower() for name in asked.split(",") if name.strip()}
        return names <= self.headers

    async def _answer_preflight(self, origin: str, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 204,
                "headers": [
                    (b"access-control-allow-origin", origin.encode()),
                    *self._preflight_headers,
                ],
            }
        )
        await send({"type": "http.response.body", "body": b""})
