"""The public keys of clients that authenticate with signed assertions (``private_key_jwt``).

A client registers its JWK Set inline (``jwks``) or by URL (``jwks_uri``). A URL is
fetched when first needed and cached; an assertion naming a ``kid`` the cache lacks
fetches again (a client rotating its key), at most once per :data:`REFETCH_SECONDS`.
A fetch is bounded in time (:data:`FETCH_TIMEOUT_SECONDS`) and size
(:data:`MAX_JWKS_BYTES`) and follows no redirect. A ``jwks_uri`` must be ``https``,
except on a loopback host (a developer's machine).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

import httpx
import orjson

from medmesh.platform.tokens.jws import InvalidJWS, VerificationKey, keys_from_jwks

FETCH_TIMEOUT_SECONDS: Final = 5.0
MAX_JWKS_BYTES: Final = 64 * 1024
MAX_KEYS: Final = 16
REFETCH_SECONDS: Final = 30.0
LOOPBACK_HOSTS: Final = frozenset({"localhost", "127.0.0.1", "::1"})
#: Members of a private JWK: a JWK Set that carries one was published by mistake.
_PRIVATE_MEMBERS: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "k"})


class JWKSUnavailable(Exception):
    """The client's ``jwks_uri`` could not be read or holds no usable JWK Set."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __repr__(self) -> str:
        return f"JWKSUnavailable({self.reason!r})"


def check_jwks_uri(uri: str) -> str:
    """``uri`` when it is an absolute ``https`` URL (``http`` only on a loopback host) without
    credentials or a fragment; else ``ValueError``."""
    parts = urlsplit(uri)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError("jwks_uri must be an absolute https URL")
    if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
        raise ValueError("jwks_uri must use https (http only on localhost)")
    if parts.username is not None or parts.password is not None or parts.fragment:
        raise ValueError("jwks_uri may hold no credentials and no fragment")
    return uri


def check_jwks(jwks: Mapping[str, Any]) -> dict[str, VerificationKey]:
    """The signing keys of a client's JWK Set by ``kid``; ``ValueError`` when it holds a private
    key, more than :data:`MAX_KEYS` keys or no usable signing key (RS256/384, ES256/384, with a
    ``kid``)."""
    keys = jwks.get("keys")
    if not isinstance(keys, list) or not keys:
        raise ValueError("jwks must be a JWK Set with a non-empty keys array")
    if len(keys) > MAX_KEYS:
        raise ValueError(f"jwks may hold at most {MAX_KEYS} keys")
    for jwk in keys:
        if not isinstance(jwk, dict):
            raise ValueError("every member of keys must be a JWK object")
        if _PRIVATE_MEMBERS & jwk.keys():
            raise ValueError(
                "jwks must hold public keys only (a private or symmetric key is in it)"
            )
    try:
        loaded = keys_from_jwks(jwks)
    except InvalidJWS as exc:
        raise ValueError(str(exc)) from None
    if not loaded:
        raise ValueError("jwks holds no RS256, RS384, ES256 or ES384 signing key with a kid")
    return loaded


@dataclass(frozen=True, slots=True)
class _Fetched:
    at: float
    keys: dict[str, VerificationKey]


class ClientKeySource:
    """The verification keys of a client, from its inline JWK Set or its ``jwks_uri``."""

    def __init__(
        self,
        cache_seconds: float = 300.0,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.cache_seconds = cache_seconds
        self._transport = transport
        self._fetched: dict[str, _Fetched] = {}
        # One read per URL at a time: requests arriving meanwhile wait for it.
        self._locks: dict[str, asyncio.Lock] = {}

    async def keys(
        self, jwks: Mapping[str, Any] | None, jwks_uri: str | None, kid: str | None
    ) -> dict[str, VerificationKey]:
        """The client's keys by ``kid``; a ``jwks_uri`` is read again when the cached set is
        stale, or lacks ``kid`` and was read more than :data:`REFETCH_SECONDS` ago."""
        if jwks is not None:
            return check_jwks(jwks)
        if jwks_uri is None:
            return {}
        cached = self._fresh(jwks_uri, kid)
        if cached is not None:
            return cached
        if len(self._locks) > 1000:
            self._locks.clear()
        async with self._locks.setdefault(jwks_uri, asyncio.Lock()):
            cached = self._fresh(jwks_uri, kid)
            if cached is not None:
                return cached
            keys = await self._fetch(jwks_uri)
            if len(self._fetched) > 1000:
                self._fetched.clear()
            self._fetched[jwks_uri] = _Fetched(time.monotonic(), keys)
            return keys

    def _fresh(self, jwks_uri: str, kid: str | None) -> dict[str, VerificationKey] | None:
        cached = self._fetched.get(jwks_uri)
        if cached is None:
            return None
        age = time.monotonic() - cached.at
        if age < self.cache_seconds and (kid in cached.keys or age < REFETCH_SECONDS):
            return cached.keys
        return None

    def forget(self, jwks_uri: str) -> None:
        self._fetched.pop(jwks_uri, None)

    async def _fetch(self, uri: str) -> dict[str, VerificationKey]:
        try:
            check_jwks_uri(uri)
        except ValueError as exc:
            raise JWKSUnavailable(str(exc)) from None
        timeout = httpx.Timeout(FETCH_TIMEOUT_SECONDS)
        try:
            async with (
                httpx.AsyncClient(
                    timeout=timeout, follow_redirects=False, transport=self._transport
                ) as http,
                http.stream("GET", uri, headers={"Accept": "application/json"}) as response,
            ):
                if response.status_code != 200:
                    raise JWKSUnavailable(f"jwks_uri answered {response.status_code}")
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_JWKS_BYTES:
                        raise JWKSUnavailable(f"jwks_uri holds more than {MAX_JWKS_BYTES} bytes")
        except httpx.HTTPError as exc:
            raise JWKSUnavailable(f"jwks_uri could not be read ({type(exc).__name__})") from None
        try:
            document = orjson.loads(bytes(body))
        except orjson.JSONDecodeError:
            raise JWKSUnavailable("jwks_uri is not JSON") from None
        if not isinstance(document, dict):
            raise JWKSUnavailable("jwks_uri is not a JWK Set")
        try:
            return check_jwks(document)
        except ValueError as exc:
            raise JWKSUnavailable(str(exc)) from None
