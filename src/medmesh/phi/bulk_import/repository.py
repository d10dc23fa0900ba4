"""Queries of NDJSON import: which of a chunk's resources exist already, and import jobs."""

from __future__ import annotations

from collections.abc import Set

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.phi.models import ResourceRow
from medmesh.phi.resources.repository import keys_clause


class ImportRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def present(self, keys: Set[tuple[str, str]]) -> set[tuple[str, str]]:
        """The ``(type, id)`` of ``keys`` that have a current row (deleted ones included)."""
        if not keys:
            return set()
        r = ResourceRow
        stmt = select(r.resource_type, r.id).where(keys_clause(keys))
        return {(t, i) for t, i in (await self.session.execute(stmt)).all()}
