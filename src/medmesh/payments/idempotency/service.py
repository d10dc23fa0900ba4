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

Work comes in two forms: an :data:`Operation` runs in a session of its own (reads, ORM changes,
conditional updates), its response stored in its transaction; a :data:`Plan` (the creation of a
payment intent) works out its answer first and then writes it, with the response, in one write
transaction outside any session (docs/decisions/0039-payments-planned-writes-and-group-commit.md).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
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
from medmesh.payments.idempotency.repository import (
    IdempotencyKeys,
    IdempotencyRepository,
    store_response,
)
from medmesh.payments.metrics import PaymentsMetrics
from medmesh.payments.scoping import Caller
from medmesh.platform.audit import AuditRecord, AuditTrail
from medmesh.platform.db import Database, WriteTransaction, utcnow, write_transaction
from medmesh.platform.logging import get_logger

log = get_logger("medmesh.payments.idempotency")
MAX_KEY_LENGTH = 255
#: The work of one POST: given its session, the Stripe object it answers with.
Operation = Callable[[AsyncSession], Awaitable[dict[str, Any]]]


@dataclass
class Planned:
    """A POST's answer worked out before anything is stored, and the writes that store it
    (run in one write transaction with the key's response)."""

    body: dict[str, Any]
    write: Callable[[WriteTransaction], Awaitable[None]]
    status: int = 200
    #: The objects the writes create, by id (``expand[]`` of one finds it here: it is not
    #: stored yet when the answer is expanded); made only when asked for.
    created: Callable[[], dict[str, dict[str, Any]]] = dict


async def _nothing(tx: WriteTransaction) -> None:
    return None


#: The work of a planned POST (see :meth:`IdempotentWrites.run_planned`).
Plan = Callable[[], Awaitable[Planned]]
#: What a POST's work gives: its status, body and the body's bytes.
_Answer = tuple[int, dict[str, Any], bytes]


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
        self.keys = IdempotencyKeys(database)
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
        """Run ``operation`` once for ``key`` (or once, without a key) in a session of its
        own, answer its response."""

        async def work(claimed: str | None) -> _Answer:
            return await self._execute(caller.owner, claimed, operation)

        return await self._counted(
            action, self._run(caller, key, method, path, params, action, work)
        )

    async def run_planned(
        self,
        caller: Caller,
        key: str | None,
        method: str,
        path: str,
        params: dict[str, Any],
        action: str,
        plan: Plan,
    ) -> Response:
        """As :meth:`run`, for work that answers before it writes: ``plan`` gives the answer
        and its writes, which then run with the key's response in one write transaction,
        outside any session."""

        async def work(claimed: str | None) -> _Answer:
            return await self._execute_planned(caller.owner, claimed, plan)

        return await self._counted(
            action, self._run(caller, key, method, path, params, action, work)
        )

    async def _counted(self, action: str, running: Awaitable[Response]) -> Response:
        try:
            return await running
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
        work: Callable[[str | None], Awaitable[_Answer]],
    ) -> Response:
        owner = caller.owner
        if key is not None and not 1 <= len(key) <= MAX_KEY_LENGTH:
            raise InvalidRequest(
                f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters",
                code="idempotency_key_invalid",
            )
        if key is not None:
            digest = request_hash(self.digest_key, method, path, params)
            replay = await self._claim(owner, key, digest)
            if replay is not None:
                self.metrics.writes.labels(action, "replayed").inc()
                return replay
        status, body, encoded = await work(key)
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

    async def _claim(self, owner: str, key: str, digest: str) -> Response | None:
        """Claim ``key`` (committed at once); None when claimed, else the stored response to
        replay (or the error of a key in use or used with other parameters)."""
        now = utcnow()
        if await self.keys.claim(owner, key, digest, now, expired=None):
            return None
        existing = await self.keys.stored(owner, key)
        if existing is not None and existing.created < now - self.ttl:
            # Past its window: the key is free again (the purge had not run yet).
            if await self.keys.claim(owner, key, digest, now, expired=now - self.ttl):
                return None
            existing = await self.keys.stored(owner, key)
        if existing is None:
            # Claimed a moment ago and released (its request failed its checks) since.
            raise IdempotencyKeyInUse(_IN_USE)
        if existing.request_hash != digest:
            raise IdempotencyMismatch(
                "Keys for idempotent requests can only be used with the same parameters they "
                "were first used with. Try using a key other than the one you sent if you meant "
                "to execute a different request."
            )
        status, body = existing.response_status, existing.response_body
        if status is None or body is None:
            raise IdempotencyKeyInUse(_IN_USE)
        return Response(
            body.encode(),
            status_code=status,
            media_type="application/json",
            headers={"Idempotent-Replayed": "true", "Idempotency-Key": key},
        )

    async def _execute(self, owner: str, key: str | None, operation: Operation) -> _Answer:
        """Run ``operation`` in a session and commit it with its stored response."""
        try:
            async with self.database.sessionmaker() as session:
                try:
                    try:
                        status, body = 200, await operation(session)
                    except CardError as error:
                        status, body = error.status, error_body(error)
                    encoded = body_bytes(body)
                    if key is not None:
                        repository = IdempotencyRepository(session)
                        await repository.store(owner, key, status, encoded.decode())
                    await session.commit()
                except BaseException:
                    # Undone first: on SQLite it holds the writer queue the release waits for.
                    await session.rollback()
                    raise
        except BaseException:
            if key is not None:
                await self.keys.release(owner, key)
            raise
        return status, body, encoded

    async def _execute_planned(self, owner: str, key: str | None, plan: Plan) -> _Answer:
        """Work out ``plan``, then run its writes and store its response in one transaction."""
        try:
            try:
                planned = await plan()
            except CardError as error:  # stored like any answer, as an operation's would be
                planned = Planned(error_body(error), _nothing, error.status)
            encoded = body_bytes(planned.body)
            async with write_transaction(self.database) as tx:
                await planned.write(tx)
                if key is not None:
                    await store_response(tx, owner, key, planned.status, encoded.decode())
        except BaseException:
            if key is not None:
                await self.keys.release(owner, key)
            raise
        return planned.status, planned.body, encoded

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
