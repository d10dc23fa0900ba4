"""Revoked tokens, users and clients, as a set every service checks each request against.

auth-service records each revocation as a kind and a value: ``jti`` (one access token), ``sid``
(a refresh family, the session its access tokens carry), ``sub`` (a user disabled or deleted)
or ``client`` (a client disabled or deleted). It publishes them at ``GET /oauth/revocations``
keyed by :func:`revocation_key`, a SHA-256 of kind and value, so the public list names no user,
client or token: a service hashes the claims of the token in hand and looks the keys up.

A ``jti`` or ``sid`` entry refuses every token that carries it; a ``sub`` or ``client`` entry
refuses the tokens issued (``iat``) at or before its ``revoked_at`` second, so a user enabled
again signs in afresh while the tokens of before stay dead (a token issued in the same second as
the revocation is refused too).

:class:`RevocationFeed` keeps a resource server's copy: one background task pulls what changed
since its cursor every ``poll_seconds``; a request only looks keys up in memory. When auth has
not answered for ``max_staleness_seconds`` (or never yet), bearer tokens are refused with 503
rather than accepted unchecked, and ``/readyz`` says why.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from medmesh.platform.config import ServiceSettings
from medmesh.platform.errors import ServiceUnavailable
from medmesh.platform.logging import get_logger

KINDS = ("jti", "sid", "sub", "client")
_log = get_logger("medmesh.revocations")


def revocation_key(kind: str, value: str) -> str:
    """The published key of a revocation: hex SHA-256 of ``kind:value``."""
    return hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()


#: Keys of the claims seen lately: a SHA-256 costs microseconds, a client reuses its token (and
#: a user or client id recurs) for many requests. Bounded: emptied when full.
_KEYS: dict[tuple[str, str], str] = {}
_KEYS_CAPACITY = 100_000


def _key(kind: str, value: str) -> str:
    key = _KEYS.get((kind, value))
    if key is None:
        if len(_KEYS) >= _KEYS_CAPACITY:
            _KEYS.clear()
        key = _KEYS[(kind, value)] = revocation_key(kind, value)
    return key


def revocation_list_url(settings: ServiceSettings) -> str:
    """Where auth publishes the list: ``REVOCATION_URL``, else next to the JWKS it serves."""
    if settings.revocation_url:
        return settings.revocation_url
    jwks = settings.effective_jwks_url
    suffix = "/.well-known/jwks.json"
    base = jwks.removesuffix(suffix) if jwks.endswith(suffix) else settings.issuer.rstrip("/")
    return base + "/oauth/revocations"


def revocation_feed_for(settings: ServiceSettings) -> RevocationFeed | None:
    """The service's feed, or None when ``REVOCATION_POLL_SECONDS`` is 0 (never in production)."""
    if settings.revocation_poll_seconds <= 0:
        if settings.environment == "production":
            raise RuntimeError("MEDMESH_REVOCATION_POLL_SECONDS=0 is refused in production")
        _log.warning("revocation_check_disabled", service=settings.service_name)
        return None
    return RevocationFeed(
        revocation_list_url(settings),
        poll_seconds=settings.revocation_poll_seconds,
        max_staleness_seconds=settings.revocation_max_staleness_seconds,
    )


class RevocationSet:
    """Revocation entries by key: ``(revoked_at second, keep_until epoch seconds)``."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[int, float]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, key: str, revoked_at: int, keep_until: float) -> None:
        """Add an entry; a key seen again keeps the latest revocation and the longest keep."""
        known = self._entries.get(key)
        if known is not None:
            revoked_at, keep_until = max(revoked_at, known[0]), max(keep_until, known[1])
        self._entries[key] = (revoked_at, keep_until)

    def prune(self, now: float) -> None:
        """Forget the entries no living token can match any more."""
        self._entries = {k: v for k, v in self._entries.items() if v[1] > now}

    def refuses(
        self, *, jti: str | None, sid: str | None, sub: str, client_id: str, issued_at: float
    ) -> bool:
        """True when a token with these claims was revoked (directly, by session, user or client)."""
        entries = self._entries
        if not entries:
            return False
        if jti is not None and _key("jti", jti) in entries:
            return True
        if sid is not None and _key("sid", sid) in entries:
            return True
        hit = entries.get(_key("sub", sub)) if sub else None
        if hit is not None and issued_at < hit[0] + 1:
            return True
        hit = entries.get(_key("client", client_id)) if client_id else None
        return hit is not None and issued_at < hit[0] + 1


class RevocationsUnavailable(ServiceUnavailable):
    """Bearer tokens cannot be checked: auth's revocation list is missing or too old."""

    code = "revocations_unavailable"


class RevocationFeed:
    """A resource server's copy of auth's revocation list, pulled in the background."""

    def __init__(
        self,
        url: str,
        *,
        poll_seconds: float = 1.0,
        max_staleness_seconds: float = 60.0,
        timeout_seconds: float = 5.0,
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.clock = clock
        self.poll_seconds = poll_seconds
        self.max_staleness_seconds = max_staleness_seconds
        self.timeout_seconds = timeout_seconds
        self.entries = RevocationSet()
        self.cursor: str | None = None
        self.failed_polls = 0
        self._http = http
        self._own_http: httpx.AsyncClient | None = None
        self._synced_at = float("-inf")
        self._task: asyncio.Task[None] | None = None
        self._stale_logged = False

    # --- what requests ask --------------------------------------------------------------

    @property
    def age_seconds(self) -> float:
        """Seconds since the last complete pull (infinite before the first)."""
        return self.clock() - self._synced_at

    @property
    def fresh(self) -> bool:
        return self.age_seconds <= self.max_staleness_seconds

    def check_fresh(self) -> None:
        """Raise :class:`RevocationsUnavailable` when the list is missing or too old."""
        if not self.fresh:
            raise RevocationsUnavailable(
                "token revocations cannot be checked now (auth-service has not answered)",
                headers={"Retry-After": str(max(1, round(self.poll_seconds)))},
            )

    async def refuses(
        self, *, jti: str | None, sid: str | None, sub: str, client_id: str, issued_at: float
    ) -> bool:
        """True when the token is revoked; 503 :class:`RevocationsUnavailable` when unknown."""
        if self.clock() - self._synced_at > self.max_staleness_seconds:
            self.check_fresh()
        return self.entries.refuses(
            jti=jti, sid=sid, sub=sub, client_id=client_id, issued_at=issued_at
        )

    # --- pulling ------------------------------------------------------------------------

    async def start(self) -> None:
        """Start pulling (the first pull runs at once, without holding up start-up)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="revocation-feed")

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._own_http is not None:
            await self._own_http.aclose()
            self._own_http = None

    async def _run(self) -> None:
        while True:
            await self.poll()
            await asyncio.sleep(self.poll_seconds)

    async def poll(self) -> bool:
        """Pull every page changed since the cursor; False (and the old list kept) on failure."""
        started = self.clock()
        try:
            while True:
                page = await self._fetch()
                complete = self._apply(page)
                if complete:
                    break
        except (httpx.HTTPError, ValueError) as exc:
            self.failed_polls += 1
            _log.warning("revocation_poll_failed", url=self.url, error_type=type(exc).__name__)
            if not self.fresh and not self._stale_logged:
                self._stale_logged = True
                _log.error(
                    "revocation_list_stale",
                    url=self.url,
                    max_staleness_seconds=self.max_staleness_seconds,
                    detail="bearer tokens are refused with 503 until auth-service answers",
                )
            return False
        self.entries.prune(time.time())
        self._synced_at = started
        if self._stale_logged:
            self._stale_logged = False
            _log.info("revocation_list_fresh", url=self.url)
        return True

    async def _fetch(self) -> Mapping[str, Any]:
        params = {"after": self.cursor} if self.cursor is not None else None
        http = self._http or self._client()
        response = await http.get(self.url, params=params)
        response.raise_for_status()
        body = response.json()
        if not isinstance(body, dict):
            raise ValueError("the revocation list is not a JSON object")
        return body

    def _client(self) -> httpx.AsyncClient:
        if self._own_http is None:
            self._own_http = httpx.AsyncClient(timeout=self.timeout_seconds)
        return self._own_http

    def _apply(self, page: Mapping[str, Any]) -> bool:
        items, cursor, complete = page.get("revocations"), page.get("cursor"), page.get("complete")
        if not isinstance(items, list) or not isinstance(cursor, str):
            raise ValueError("the revocation list lacks revocations or cursor")
        parsed = []
        for item in items:
            if not isinstance(item, dict):
                raise ValueError("a revocation is not an object")
            key, revoked_at, keep_until = (
                item.get("key"),
                item.get("revoked_at"),
                item.get("keep_until"),
            )
            if (
                not isinstance(key, str)
                or not isinstance(revoked_at, int)
                or not isinstance(keep_until, int | float)
            ):
                raise ValueError("a revocation lacks key, revoked_at or keep_until")
            parsed.append((key, revoked_at, float(keep_until)))
        # Only a page read whole moves the cursor, so a bad page is asked for again.
        for key, revoked_at, keep_until in parsed:
            self.entries.add(key, revoked_at, keep_until)
        self.cursor = cursor
        return complete is not False
