"""Queries of the user domain."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.auth.models import User
from medmesh.platform.paging import keyset_page


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, user_id: str) -> User | None:
        return await self.session.get(User, user_id)

    async def by_username(self, username: str) -> User | None:
        user: User | None = await self.session.scalar(select(User).where(User.username == username))
        return user

    async def page(self, *, after: str | None, limit: int) -> Sequence[User]:
        stmt = keyset_page(select(User), [User.username], (after,) if after else None, limit)
        return (await self.session.scalars(stmt)).all()

    async def add(self, user: User) -> None:
        self.session.add(user)
        await self.session.flush()

    async def delete(self, user: User) -> None:
        await self.session.delete(user)
        await self.session.flush()
