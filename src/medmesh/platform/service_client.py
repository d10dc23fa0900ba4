"""An httpx client for calling another medmesh service.

:class:`ServiceClient` authenticates with an OAuth 2.0 ``client_credentials``
token (``client_secret_basic``), cached until shortly before it expires and
renewed once when the peer answers 401. Idempotent requests (and any request
carrying an ``Idempotency-Key``) are retried on connection errors and 5xx
answers with exponential backoff and jitter. Calls go through
``httpx.AsyncClient``, so the platform's OpenTelemetry instrumentation traces
them and propagates ``traceparent``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import random
import time
from typing import Any
from urllib.parse import quote_plus

import httpx

from medmesh.platform.errors import ServiceUnavailable
from medmesh.platform.logging import get_logger

__all__ = ["PeerUnavailable", "ServiceClient"]

log = get_logger("medmesh.platform.service_client")

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})


class PeerUnavailable(ServiceUnavailable):
    """A peer service (or its token endpoint) could not be reached or refused a token."""

    code = "peer_unavailable"


class _Token:
    __slots__ = ("refresh_at", "value")

    def __init__(self, value: str, lifetime: float) -> None:
        self.value = value
        # Renew 60 s before expiry, or at 90 % of a short lifetime.
        self.refresh_at = time.monotonic() + lifetime - min(60.0, lifetime * 0.1)

    @property
    def fresh(self) -> bool:
        return time.monotonic() < self.refresh_at


class ServiceClient:
    """Calls one peer service with a cached client-credentials token and safe retries."""

    def __init__(
        self,
        base_url: str,
        *,
        token_url: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        scope: str | None = None,
        audience: str | None = None,
        timeout: float = 10,
        retries: int = 3,
        backoff: float = 0.2,
        headers: dict[str, str] | None = None,
    ) -> None:
        if token_url and not (client_id and client_secret):
            raise ValueError("a token_url needs a client_id and a client_secret")
        self.base_url = base_url
        self.token_url = token_url
        self.client_id = client_id
        self.scope = scope
        self.audience = audience
        self.retries = retries
        self.backoff = backoff
        self._secret = client_secret or ""
        self._http = httpx.AsyncClient(base_url=base_url, timeout=timeout, headers=headers)
        self._token: _Token | None = None
        self._token_lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"ServiceClient(base_url={self.base_url!r}, client_id={self.client_id!r})"

    async def __aenter__(self) -> ServiceClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the underlying connections."""
        await self._http.aclose()

    async def get(self, path: str, **kw: Any) -> httpx.Response:
        """``GET path`` (retried on failure)."""
        return await self.request("GET", path, **kw)

    async def post(self, path: str, **kw: Any) -> httpx.Response:
        """``POST path`` (retried only when an ``Idempotency-Key`` header is given)."""
        return await self.request("POST", path, **kw)

    async def put(self, path: str, **kw: Any) -> httpx.Response:
        """``PUT path`` (retried on failure)."""
        return await self.request("PUT", path, **kw)

    async def patch(self, path: str, **kw: Any) -> httpx.Response:
        """``PATCH path`` (retried only when an ``Idempotency-Key`` header is given)."""
        return await self.request("PATCH", path, **kw)

    async def delete(self, path: str, **kw: Any) -> httpx.Response:
        """``DELETE path`` (retried on failure)."""
        return await self.request("DELETE", path, **kw)

    async def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        """Send a request to the peer and return its final response.

        Takes httpx's keyword arguments (``params``, ``json``, ``data``,
        ``content``, ``headers`` ...). Returns the last response even when it is
        a 5xx after all retries; raises :class:`PeerUnavailable` when the peer
        could not be reached at all.
        """
        method = method.upper()
        headers = httpx.Headers(kw.pop("headers", None))
        retryable = method in IDEMPOTENT_METHODS or "idempotency-key" in headers
        attempts = 1 + (self.retries if retryable else 0)
        renewed = False
        attempt = 0
        while True:
            token = await self._access_token() if self.token_url else None
            if token is not None:
                headers["Authorization"] = f"Bearer {token}"
            try:
                response = await self._http.request(method, path, headers=headers, **kw)
            except httpx.TransportError as exc:
                attempt += 1
                if attempt >= attempts:
                    raise PeerUnavailable(f"{self.base_url} is unreachable") from exc
                log.warning("peer_retry", method=method, path=path, error=type(exc).__name__)
            else:
                if response.status_code == 401 and token is not None and not renewed:
                    # The peer may have rotated keys or revoked the token: renew once.
                    renewed = True
                    self._forget(token)
                    continue
                attempt += 1
                if response.status_code < 500 or attempt >= attempts:
                    return response
                log.warning("peer_retry", method=method, path=path, status=response.status_code)
            await asyncio.sleep(self._delay(attempt))

    def _delay(self, attempt: int) -> float:
        delay: float = self.backoff * 2 ** (attempt - 1)
        return delay * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not security

    def _forget(self, token: str) -> None:
        if self._token is not None and self._token.value == token:
            self._token = None

    async def _access_token(self) -> str:
        cached = self._token
        if cached is not None and cached.fresh:
            return cached.value
        async with self._token_lock:
            # Another caller may have renewed it while this one waited for the lock.
            if self._token is not None and self._token.fresh:
                return self._token.value
            self._token = await self._fetch_token()
            return self._token.value

    async def _fetch_token(self) -> _Token:
        assert self.token_url is not None
        assert self.client_id is not None
        credentials = f"{quote_plus(self.client_id)}:{quote_plus(self._secret)}"
        form = {"grant_type": "client_credentials"}
        if self.scope:
            form["scope"] = self.scope
        if self.audience:
            form["audience"] = self.audience
        headers = {
            "Authorization": "Basic " + base64.b64encode(credentials.encode()).decode(),
            "Accept": "application/json",
        }
        for attempt in range(1, self.retries + 2):
            try:
                response = await self._http.post(self.token_url, data=form, headers=headers)
            except httpx.TransportError as exc:
                if attempt > self.retries:
                    raise PeerUnavailable("the token endpoint is unreachable") from exc
            else:
                if response.status_code < 500 or attempt > self.retries:
                    return self._parse_token(response)
            await asyncio.sleep(self._delay(attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    def _parse_token(self, response: httpx.Response) -> _Token:
        if response.status_code != 200:
            error = "unknown"
            with contextlib.suppress(ValueError, AttributeError):
                error = str(response.json().get("error", error))
            raise PeerUnavailable(
                f"the token endpoint refused {self.client_id!r}: {response.status_code} {error}"
            )
        body = response.json()
        value = body.get("access_token")
        if not isinstance(value, str) or not value:
            raise PeerUnavailable("the token endpoint answered without an access_token")
        lifetime = float(body.get("expires_in") or 300)
        return _Token(value, lifetime)
