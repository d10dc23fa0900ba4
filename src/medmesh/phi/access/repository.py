"""Queries of the access domain: the current Consent rows (bodies still sealed)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.phi.models import ResourceRow


async def current_consents(
    session: AsyncSession, *, after_id: str | None, limit: int
) -> Sequence[ResourceRow]:
    """Current, not deleted Consent rows in id order; page on with ``after_id``."""
    stmt = select(ResourceRow).where(
        ResourceRow.resource_type == "Consent", ResourceRow.deleted.is_(False)
    )
    if after_id is not None:
        stmt = stmt.where(ResourceRow.id > after_id)
    stmt = stmt.order_by(ResourceRow.id).limit(limit)
    return (await session.scalars(stmt)).all()
