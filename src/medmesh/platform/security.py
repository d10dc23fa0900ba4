"""Security headers, request body limits and rate limiting.

- :class:`SecurityHeadersMiddleware` adds HSTS, ``X-Content-Type-Options``,
  ``X-Frame-Options``, a strict CSP, ``Referrer-Policy``, ``Permissions-Policy``
  and ``Cache-Control: no-store`` on every response (PHI and tokens must never be
  cached); the docs pages get a CSP that lets Swagger UI load.
- :class:`BodyLimitMiddleware` refuses bodies larger than the service's limit
  with 413 before the application reads them, and bodies that do not arrive within
  ``body_read_timeout`` with 408 (the connection is then closed).
- :class:`RateLimiter` is a token bucket per key, in memory or in Redis (when a
  Redis URL is set, so replicas share one budget).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from medmesh.platform.errors import MedmeshError, PayloadTooLarge

ErrorResponder = Callable[[Request, MedmeshError], Any]

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"strict-transport-security", b"max-age=63072000; includeSubDomains"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
    (b"cross-origin-opener-policy", b"same-origin"),
)
API_CSP = b"default-src 'none'; frame-ancestors 'none'"
DOCS_CSP = (
    b"default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    b"style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; img-src 'self' data: "
    b"https://fastapi.tiangolo.com; frame-ancestors 'none'"
)
DOCS_PATHS = frozenset({"/docs", "/redoc", "/docs/oauth2-redirect"})


class SecurityHeadersMiddleware:
    """Pure ASGI middleware adding the security headers to every HTTP response.

    A header the response already has (a route's own ``Cache-Control``, say) is kept."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._defaults = {
            csp: (
                *SECURITY_HEADERS,
                (b"content-security-policy", csp),
                (b"cache-control", b"no-store"),
            )
            for csp in (API_CSP, DOCS_CSP)
        }
        self._names = frozenset(name for name, _ in self._defaults[API_CSP])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        defaults = self._defaults[DOCS_CSP if scope["path"] in DOCS_PATHS else API_CSP]
        names = self._names

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = names.intersection([name.lower() for name, _ in headers])
                if present:
                    headers += [pair for pair in defaults if pair[0] not in present]
                else:
                    headers += defaults
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_wrapper)


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


@dataclass(frozen=True, slots=True)
class RateDecision:
    """The outcome of one rate-limit check, with what the ``RateLimit`` headers need."""

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int
    retry_after: int

    def headers(self, window_seconds: int) -> dict[str, str]:
        """``RateLimit``/``RateLimit-Policy`` (IETF draft) and ``Retry-After`` when refused."""
        out = {
            "RateLimit-Policy": f'"default";q={self.limit};w={window_seconds}',
            "RateLimit": f'"default";r={self.remaining};t={self.reset_seconds}',
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_seconds),
        }
        if not self.allowed:
            out["Retry-After"] = str(self.retry_after)
        return out


_REDIS_BUCKET = """
local key = KEYS[1]
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local state = redis.call('HMGET', key, 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil then tokens = capacity; ts = now end
tokens = math.min(capacity, tokens + (now - ts) * rate)
local allowed = 0
if tokens >= cost then tokens = tokens - cost; allowed = 1 end
redis.call('HSET', key, 'tokens', tokens, 'ts', now)
redis.call('PEXPIRE', key, math.ceil(capacity / rate * 1000) + 1000)
return {allowed, tostring(tokens)}
"""


class RateLimiter:
    """A token bucket per key: ``limit`` requests per ``window_seconds``, bursts up to ``limit``.

    In memory (bounded LRU of buckets) unless ``redis_url`` is given, in which case the
    bucket lives in Redis and is updated atomically by a Lua script, so every replica
    shares one budget.
    """

    def __init__(
        self,
        limit: int,
        window_seconds: int = 60,
        *,
        redis_url: str = "",
        prefix: str = "medmesh:rl",
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit <= 0 or window_seconds <= 0:
            raise ValueError("limit and window must be positive")
        self.limit = limit
        self.window_seconds = window_seconds
        self.rate = limit / window_seconds
        self.prefix = prefix
        self.max_keys = max_keys
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._redis: Any = None
        self._script: Any = None
        if redis_url:
            import redis.asyncio as redis_asyncio

            self._redis = redis_asyncio.from_url(redis_url)
            self._script = self._redis.register_script(_REDIS_BUCKET)

    def _decision(self, allowed: bool, tokens: float) -> RateDecision:
        remaining = max(0, math.floor(tokens))
        missing = self.limit - tokens
        reset = max(0, math.ceil(missing / self.rate))
        retry_after = 0 if allowed else max(1, math.ceil((1 - tokens) / self.rate))
        return RateDecision(allowed, self.limit, remaining, reset, retry_after)

    def hit_local(self, key: str, cost: float = 1.0) -> RateDecision:
        """Take ``cost`` tokens from ``key``'s in-memory bucket."""
        now = self.clock()
        tokens, ts = self._buckets.pop(key, (float(self.limit), now))
        tokens = min(float(self.limit), tokens + (now - ts) * self.rate)
        allowed = tokens >= cost
        if allowed:
            tokens -= cost
        self._buckets[key] = (tokens, now)
        if len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return self._decision(allowed, tokens)

    async def hit(self, key: str, cost: float = 1.0) -> RateDecision:
        """Take ``cost`` tokens from ``key``'s bucket (Redis when configured)."""
        if self._script is None:
            return self.hit_local(key, cost)
        allowed, tokens = await self._script(
            keys=[f"{self.prefix}:{key}"], args=[self.limit, self.rate, time.time(), cost]
        )
        return self._decision(bool(int(allowed)), float(tokens))

    async def aclose(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()


def client_ip(request: Request) -> str:
    """The peer address (proxies are trusted only through uvicorn's --forwarded-allow-ips)."""
    return request.client.host if request.client else "unknown"
