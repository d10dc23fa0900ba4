"""Search indexes of stored resources (written with every version, removed on delete).

The resource store calls ``write`` and ``remove`` in the same transaction as the change, so
the index never disagrees with the current versions. PHI parameters are written as keyed
blind-index tokens only (see :mod:`medmesh.phi.search.extract`).

Bulk writers (a transaction Bundle) may wrap their work in :meth:`SearchIndex.deferred`: the
rows of every resource are then inserted together when the block ends (one statement per
table instead of several per resource), and any search run inside the block first inserts
what is pending, so it still sees every earlier write of the transaction.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.phi.protection import PhiProtection
from medmesh.phi.search.extract import IndexRows, IndexValues, index_rows, index_values
from medmesh.phi.search.repository import (
    PENDING,
    SearchRepository,
    insert_statements,
    pending_rows,
)
from medmesh.platform.db import Statement


class SearchIndex:
    def __init__(self, protection: PhiProtection) -> None:
        self.protection = protection

    def rows(self, resource_type: str, resource: dict[str, Any]) -> IndexRows:
        """The index rows of ``resource`` (pure computation: writers prepare them before they
        take SQLite's write lock, which is held until the commit)."""
        return index_rows(resource_type, resource, self.protection.blind_index)

    async def write(
        self,
        session: AsyncSession,
        resource_type: str,
        resource_id: str,
        resource: dict[str, Any],
        rows: IndexRows | None = None,
    ) -> None:
        """Replace the index rows of ``resource_type/resource_id`` by those of ``resource``
        (``rows``: computed beforehand by :meth:`rows`)."""
        if rows is None:
            rows = self.rows(resource_type, resource)
        values = index_values(resource_type, resource_id, rows)
        meta = resource.get("meta")
        # A first version has no rows to replace: skip the deletes (bulk imports are mostly creates).
        fresh = isinstance(meta, dict) and meta.get("versionId") == "1"
        pending = pending_rows(session)
        if pending is None:
            await SearchRepository(session).replace_index(
                resource_type, resource_id, values, fresh=fresh
            )
            return
        key = (resource_type, resource_id)
        if not fresh and key not in pending:
            await SearchRepository(session).remove_index(resource_type, resource_id)
        pending[key] = values

    def new_resource_inserts(
        self, session: AsyncSession, resource_type: str, resource_id: str, rows: IndexRows
    ) -> list[Statement]:
        """The inserts of the index rows of a resource that has none yet, for the caller to run
        with its own writes (none inside a deferred block, which takes the rows instead)."""
        values = index_values(resource_type, resource_id, rows)
        return self.new_resources_inserts(session, {(resource_type, resource_id): values})

    def new_resources_inserts(
        self, session: AsyncSession, resources: dict[tuple[str, str], IndexValues]
    ) -> list[Statement]:
        """:meth:`new_resource_inserts` of many resources (their rows as
        :func:`~medmesh.phi.search.extract.index_values` gives them): one executemany per
        table."""
        pending = pending_rows(session)
        if pending is not None:
            pending.update(resources)
            return []
        return insert_statements(resources.values())

    async def remove(self, session: AsyncSession, resource_type: str, resource_id: str) -> None:
        """Drop every index row of ``resource_type/resource_id``."""
        pending = pending_rows(session)
        if pending is not None:
            pending.pop((resource_type, resource_id), None)
        await SearchRepository(session).remove_index(resource_type, resource_id)

    @asynccontextmanager
    async def deferred(self, session: AsyncSession) -> AsyncIterator[None]:
        """Hold index rows until the block ends (not for use around savepoints that may roll back)."""
        if pending_rows(session) is not None:
            yield
            return
        session.info[PENDING] = {}
        try:
            yield
            await SearchRepository(session).flush_pending()
        finally:
            session.info.pop(PENDING, None)
