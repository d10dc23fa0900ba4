"""Queries of the OAuth client domain."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.auth.models import Client, ClientAssertionJti
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


class ClientAssertionJtiRepository:
    """The ``jti`` of every accepted client assertion, until it expires."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def remember(self, client_id: str, jti: str, expires_at: datetime) -> bool:
        """Record ``jti``; False when the client's assertion with that ``jti`` was seen before
        (atomic, so two replicas never both accept one assertion)."""
        dialect = self.session.get_bind().dialect.name
        dialect_insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement = (
            dialect_insert(ClientAssertionJti)
            .values(client_id=client_id, jti=jti, expires_at=expires_at)
            .on_conflict_do_nothing(index_elements=["client_id", "jti"])
            .returning(ClientAssertionJti.jti)
        )
        return (await self.session.execute(statement)).scalar_one_or_none() is not None

    async def delete_expired(self, now: datetime) -> int:
        result = await self.session.execute(
            delete(ClientAssertionJti).where(ClientAssertionJti.expires_at < now)
        )
        return int(getattr(result, "rowcount", 0) or 0)
