"""Every POST runs here: in its own unit of work, and under its ``Idempotency-Key`` when it
has one, as Stripe documents it.

- The first request with a key claims it (committed at once), runs, and stores its response
  (status and body) in the same transaction as its changes.
- A later request with the key and the same method, path and parameters gets the stored
  response again (``Idempotent-Replayed: true``) for ``idempotency_hours``.
- Other parameters with the key: 400 ``idempotency_error``. The key's request still running:
  409 ``idempotency_key_in_use``.
- A request that fails its checks (a 400 raised before anything changed) or fails
  unexpectedly stores nothing and releases the key; a card error (402) keeps the changes it
  made (the intent's ``last_payment_error``) and is stored like a success.

Keys belong to the caller (client and subject): two callers' equal keys never meet.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from medmesh.payments.errors import (
    CardError,
    IdempotencyKeyInUse,
    IdempotencyMismatch,
    InvalidRequest,
    StripeError,
    error_body,
)
from medmesh.payments.idempotency.repository import IdempotencyRepository
from medmesh.payments.metrics import PaymentsMetrics
from medmesh.payments.scoping import Caller
from medmesh.platform.audit import AuditRecord, AuditTrail
from medmesh.platform.db import Database, utcnow
from medmesh.platform.logging import get_logger

log = get_logger("medmesh.payments.idempotency")
MAX_KEY_LENGTH = 255
#: The work of one POST: given its session, the Stripe object it answers with.
Operation = Callable[[AsyncSession], Awaitable[dict[str, Any]]]


def request_hash(key: bytes, method: str, path: str, params: dict[str, Any]) -> str:
    """A keyed digest of the request: parameters may hold a card number, and an unkeyed hash
    of one could be tested against guessed numbers."""
    canonical = orjson.dumps([method, path, params], option=orjson.OPT_SORT_KEYS)
    return hmac.new(key, canonical, hashlib.sha256).hexdigest()


class IdempotentWrites:
    def __init__(
        self,
        database: Database,
        audit: AuditTrail,
        metrics: PaymentsMetrics,
        ttl_hours: float,
        digest_key: bytes,
    ) -> None:
        self.database = database
        self.metrics = metrics
        self.digest_key = digest_key
        self.audit = audit
        self.ttl = timedelta(hours=ttl_hours)

    async def run(
        self,
        caller: Caller,
        key: str | None,
        method: str,
        path: str,
        params: dict[str, Any],
        action: str,
        operation: Operation,
    ) -> Response:
        """Run ``operation`` once for ``key`` (or once, without a key), answer its response."""
        try:
            return await self._run(caller, key, method, path, params, action, operation)
        except IdempotencyKeyInUse:
            self.metrics.writes.labels(action, "key_in_use").inc()
            raise
        except StripeError:
            self.metrics.writes.labels(action, "refused").inc()
            raise

    async def _run(
        self,
        caller: Caller,
        key: str | None,
        method: str,
        path: str,
        params: dict[str, Any],
        action: str,
        operation: Operation,
    ) -> Response:
        owner = caller.owner
        if key is not None and not 1 <= len(key) <= MAX_KEY_LENGTH:
            raise InvalidRequest(
                f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters",
                code="idempotency_key_invalid",
            )
        # One session: the claim's transaction (committed at once), then the request's.
        async with self.database.sessionmaker() as session:
            if key is not None:
                digest = request_hash(self.digest_key, method, path, params)
                replay = await self._claim(session, owner, key, digest)
                if replay is not None:
                    self.metrics.writes.labels(action, "replayed").inc()
                    return replay
            status, body, encoded = await self._execute(session, owner, key, operation)
        if status < 400:
            self.metrics.writes.labels(action, "succeeded").inc()
        else:
            self.metrics.writes.labels(action, "card_error").inc()
            self.metrics.declines.labels(str(body["error"].get("code", ""))).inc()
        if isinstance(body.get("id"), str):
            await self.audit.record(
                AuditRecord.for_origin(
                    caller.origin,
                    action,
                    outcome="success" if status < 400 else "declined",
                    resource_type=str(body.get("object", "")) or None,
                    resource_id=body["id"],
                )
            )
        return Response(encoded, status_code=status, media_type="application/json")

    async def _claim(
        self, session: AsyncSession, owner: str, key: str, digest: str
    ) -> Response | None:
        now = utcnow()
        repository = IdempotencyRepository(session)
        claimed = await repository.claim(owner, key, digest, now)
        if not claimed:
            existing = await repository.get(owner, key)
            if existing is not None and existing.created < now - self.ttl:
                # Past its window: the key is free again (the purge had not run yet).
                await repository.drop_expired(owner, key, now - self.ttl)
                claimed = await repository.claim(owner, key, digest, now)
        if claimed:
            await session.commit()
            return None
        existing = await repository.get(owner, key)
        stored = (
            (existing.request_hash, existing.response_status, existing.response_body)
            if existing is not None
            else None
        )
        await session.rollback()
        if stored is None:
            # Claimed a moment ago and released (its request failed its checks) since.
            raise IdempotencyKeyInUse(_IN_USE)
        stored_hash, status, body = stored
        if stored_hash != digest:
            raise IdempotencyMismatch(
                "Keys for idempotent requests can only be used with the same parameters they "
                "were first used with. Try using a key other than the one you sent if you meant "
                "to execute a different request."
            )
        if status is None or body is None:
            raise IdempotencyKeyInUse(_IN_USE)
        return Response(
            body.encode(),
            status_code=status,
            media_type="application/json",
            headers={"Idempotent-Replayed": "true", "Idempotency-Key": key},
        )

    async def _execute(
        self, session: AsyncSession, owner: str, key: str | None, operation: Operation
    ) -> tuple[int, dict[str, Any], bytes]:
        """Run ``operation`` in ``session`` and commit it with its stored response: its status,
        body and the body's bytes."""
        try:
            try:
                status, body = 200, await operation(session)
            except CardError as error:
                status, body = error.status, error_body(error)
            encoded = body_bytes(body)
            if key is not None:
                await IdempotencyRepository(session).store(owner, key, status, encoded.decode())
            await session.commit()
        except BaseException:
            # Undone first: on SQLite it holds the writer queue the release waits for.
            await session.rollback()
            if key is not None:
                async with self.database.sessionmaker() as other:
                    await IdempotencyRepository(other).release(owner, key)
                    await other.commit()
            raise
        return status, body, encoded

    async def purge_expired(self) -> int:
        """Delete the keys whose replay window has passed; how many went."""
        async with self.database.sessionmaker() as session:
            gone = await IdempotencyRepository(session).purge(utcnow() - self.ttl)
            await session.commit()
        self.metrics.expired_keys.inc(gone)
        return gone

    async def purge_periodically(self, interval_seconds: float) -> None:
        """Run :meth:`purge_expired` every ``interval_seconds`` until cancelled."""
        while True:
            await asyncio.sleep(interval_seconds)
            try:
                await self.purge_expired()
            except Exception as exc:  # the next round retries; the keys only wait longer
                log.warning("idempotency_purge_failed", error_type=type(exc).__name__)


_IN_USE = (
    "There is currently another in-progress request using this Idempotent Key (that probably "
    "means you submitted twice, and the other request is still going through): please retry "
    "later."
)


def body_bytes(body: dict[str, Any]) -> bytes:
    return orjson.dumps(body)
