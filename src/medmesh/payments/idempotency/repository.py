"""Queries of idempotency keys. A claim is committed on its own, before the request runs, so
a second request with the key sees it at once; the response is stored in the request's own
transaction, so it is stored exactly when the request's changes are.

Claims, releases and reads of a key run outside any session (``write_transaction`` and
``OneRowRead``): they are one statement each, on every POST."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.payments.models import IdempotencyKeyRow
from medmesh.platform.db import (
    Database,
    OneRowRead,
    WriteTransaction,
    execute_together,
    write_transaction,
)

_KEY = (
    IdempotencyKeyRow.owner == bindparam("b_owner"),
    IdempotencyKeyRow.key == bindparam("b_key"),
)
#: Statements are module constants: each is compiled once.
_CLAIM = insert(IdempotencyKeyRow)
_DROP_EXPIRED = delete(IdempotencyKeyRow).where(
    *_KEY, IdempotencyKeyRow.created < bindparam("b_before")
)
_RELEASE = delete(IdempotencyKeyRow).where(*_KEY, IdempotencyKeyRow.response_status.is_(None))
_STORE = (
    update(IdempotencyKeyRow)
    .where(*_KEY)
    .values(response_status=bindparam("b_status"), response_body=bindparam("b_body"))
)


class StoredKey(NamedTuple):
    """A claimed key as last committed: its request's digest and, once answered, the response."""

    request_hash: str
    response_status: int | None
    response_body: str | None
    created: datetime


_STORED = OneRowRead(
    select(
        IdempotencyKeyRow.request_hash,
        IdempotencyKeyRow.response_status,
        IdempotencyKeyRow.response_body,
        IdempotencyKeyRow.created,
    ).where(*_KEY),
    StoredKey,
)


class IdempotencyKeys:
    """Claims and releases of keys, each committed at once, and reads of what is committed."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def claim(
        self, owner: str, key: str, request_hash: str, now: datetime, *, expired: datetime | None
    ) -> bool:
        """Insert and commit the claim; False when the key exists. With ``expired``, a key
        created before then is deleted first (its replay window has passed)."""
        values = {
            "owner": owner,
            "key": key,
            "request_hash": request_hash,
            "response_status": None,
            "response_body": None,
            "created": now,
        }
        try:
            async with write_transaction(self.database) as tx:
                if expired is not None:
                    await tx.execute(
                        _DROP_EXPIRED, {"b_owner": owner, "b_key": key, "b_before": expired}
                    )
                await tx.execute(_CLAIM, values)
        except IntegrityError:
            return False
        return True

    async def stored(self, owner: str, key: str) -> StoredKey | None:
        """The key as last committed, or None."""
        return await _STORED.first(self.database, {"b_owner": owner, "b_key": key})

    async def release(self, owner: str, key: str) -> None:
        """Forget a claim whose request changed nothing (the key may be used again)."""
        async with write_transaction(self.database) as tx:
            await tx.execute(_RELEASE, {"b_owner": owner, "b_key": key})


async def store_response(
    tx: WriteTransaction, owner: str, key: str, status: int, body: str
) -> None:
    """Store the response of a claimed key in the request's write transaction."""
    values = {"b_owner": owner, "b_key": key, "b_status": status, "b_body": body}
    await tx.execute(_STORE, values)


class IdempotencyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def purge(self, before: datetime) -> int:
        """Delete every key created before ``before``; how many went."""
        result: CursorResult[Any] = await self.session.execute(  # type: ignore[assignment]
            delete(IdempotencyKeyRow).where(IdempotencyKeyRow.created < before)
        )
        return int(result.rowcount or 0)

    async def store(self, owner: str, key: str, status: int, body: str) -> None:
        """Store the response of a claimed key in the session's transaction."""
        values = {"b_owner": owner, "b_key": key, "b_status": status, "b_body": body}
        await execute_together(self.session, [(_STORE, values)])


__all__ = ["IdempotencyKeys", "IdempotencyRepository", "StoredKey", "store_response"]
