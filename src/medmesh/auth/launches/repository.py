"""Queries of EHR launch contexts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.auth.models import LaunchContext


class LaunchContextRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, row: LaunchContext) -> None:
        self.session.add(row)
        await self.session.flush()

    async def by_hash(self, value_hash: str) -> LaunchContext | None:
        return await self.session.get(LaunchContext, value_hash)

    async def mark_used(self, value_hash: str, now: datetime) -> bool:
        """Mark the launch used; False when another request used it first."""
        result = await self.session.execute(
            update(LaunchContext)
            .where(LaunchContext.value_hash == value_hash, LaunchContext.used_at.is_(None))
            .values(used_at=now)
        )
        return int(getattr(result, "rowcount", 0) or 0) == 1

    async def delete_expired(self, now: datetime) -> int:
        result = await self.session.execute(
            delete(LaunchContext).where(LaunchContext.expires_at < now)
        )
        return int(getattr(result, "rowcount", 0) or 0)
