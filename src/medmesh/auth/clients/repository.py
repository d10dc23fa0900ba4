"""Queries of the OAuth client domain."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.auth.models import Client
from medmesh.platform.paging import keyset_page


class ClientRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, client_id: str) -> Client | None:
        return await self.session.get(Client, client_id)

    async def page(self, *, after: str | None, limit: int) -> Sequence[Client]:
        stmt = keyset_page(select(Client), [Client.client_id], (after,) if after else None, limit)
        return (await self.session.scalars(stmt)).all()

    async def add(self, client: Client) -> None:
        self.session.add(client)
        await self.session.flush()

    async def delete(self, client: Client) -> None:
        await self.session.delete(client)
        await self.session.flush()
