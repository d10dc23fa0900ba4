"""Queries of idempotency keys. A claim is committed on its own, before the request runs, so
a second request with the key sees it at once; the response is stored in the request's own
transaction, so it is stored exactly when the request's changes are."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.payments.models import IdempotencyKeyRow


class IdempotencyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def claim(self, owner: str, key: str, request_hash: str, now: datetime) -> bool:
        """Insert the claim; False when the key exists (the caller reads it)."""
        self.session.add(
            IdempotencyKeyRow(owner=owner, key=key, request_hash=request_hash, created=now)
        )
        try:
            await self.session.flush()
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
        await self.session.execute(
            update(IdempotencyKeyRow)
            .where(IdempotencyKeyRow.owner == owner, IdempotencyKeyRow.key == key)
            .values(response_status=status, response_body=body)
        )
