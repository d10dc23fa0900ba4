"""Queries of the role domain."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.auth.models import Role


class RoleRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, name: str) -> Role | None:
        return await self.session.get(Role, name)

    async def all(self) -> Sequence[Role]:
        return (await self.session.scalars(select(Role).order_by(Role.name))).all()

    async def named(self, names: Iterable[str]) -> Sequence[Role]:
        wanted = list(names)
        if not wanted:
            return []
        return (await self.session.scalars(select(Role).where(Role.name.in_(wanted)))).all()

    async def add(self, role: Role) -> None:
        self.session.add(role)
        await self.session.flush()

    async def delete(self, role: Role) -> None:
        await self.session.delete(role)
        await self.session.flush()
