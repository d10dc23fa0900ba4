"""Queries of the login-protection domain."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.auth.models import LoginAttempts


class LoginAttemptRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, key: str) -> LoginAttempts | None:
        return await self.session.get(LoginAttempts, key)

    async def add(self, row: LoginAttempts) -> None:
        self.session.add(row)
        await self.session.flush()

    async def clear(self, key: str) -> None:
        await self.session.execute(delete(LoginAttempts).where(LoginAttempts.key == key))

    async def delete_stale(self, before: datetime) -> int:
        result = await self.session.execute(
            delete(LoginAttempts).where(LoginAttempts.last_failure_at < before)
        )
        return int(getattr(result, "rowcount", 0) or 0)
