"""Queries of idempotency keys. A claim is committed on its own, before the request runs, so
a second request with the key sees it at once; the response is stored in the request's own
transaction, so it is stored exactly when the request's changes are."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.payments.models import IdempotencyKeyRow
from medmesh.payments.rows import add_rows
from medmesh.platform.db import execute_together

#: The response of a claimed key (one statement object: compiled once).
_STORE = (
    update(IdempotencyKeyRow)
    .where(
        IdempotencyKeyRow.owner == bindparam("b_owner"),
        IdempotencyKeyRow.key == bindparam("b_key"),
    )
    .values(response_status=bindparam("b_status"), response_body=bindparam("b_body"))
)


class IdempotencyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def claim(self, owner: str, key: str, request_hash: str, now: datetime) -> bool:
        """Insert the claim; False when the key exists (the transaction is rolled back and the
        caller reads the key)."""
        row = IdempotencyKeyRow(owner=owner, key=key, request_hash=request_hash, created=now)
        try:
            await add_rows(self.session, row)
        except IntegrityError:
            await self.session.rollback()
            return False
        return True

    async def get(self, owner: str, key: str) -> IdempotencyKeyRow | None:
        return await self.session.get(IdempotencyKeyRow, (owner, key))

    async def drop_expired(self, owner: str, key: str, before: datetime) -> None:
        await self.session.execute(
            delete(IdempotencyKeyRow).where(
                IdempotencyKeyRow.owner == owner,
                IdempotencyKeyRow.key == key,
                IdempotencyKeyRow.created < before,
            )
        )

    async def purge(self, before: datetime) -> int:
        """Delete every key created before ``before``; how many went."""
        result: CursorResult[Any] = await self.session.execute(  # type: ignore[assignment]
            delete(IdempotencyKeyRow).where(IdempotencyKeyRow.created < before)
        )
        return int(result.rowcount or 0)

    async def release(self, owner: str, key: str) -> None:
        """Forget a claim whose request changed nothing (the key may be used again)."""
        await self.session.execute(
            delete(IdempotencyKeyRow).where(
                IdempotencyKeyRow.owner == owner,
                IdempotencyKeyRow.key == key,
                IdempotencyKeyRow.response_status.is_(None),
            )
        )

    async def store(self, owner: str, key: str, status: int, body: str) -> None:
        values = {"b_owner": owner, "b_key": key, "b_status": status, "b_body": body}
        await execute_together(self.session, [(_STORE, values)])
