"""Queries of NDJSON import: which of a chunk's resources exist already, and import jobs."""

from __future__ import annotations

from collections.abc import Callable, Set
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from medmesh.phi.bulk_import.models import ImportJobRow
from medmesh.phi.bulk_import.progress import FileProgress
from medmesh.phi.models import ResourceRow
from medmesh.phi.resources.repository import keys_clause
from medmesh.platform.db import utcnow


class ImportRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def present(self, keys: Set[tuple[str, str]]) -> set[tuple[str, str]]:
        """The ``(type, id)`` of ``keys`` that have a current row (deleted ones included)."""
        if not keys:
            return set()
        return {(t, i) for t, i in (await self.session.execute(present_query(keys))).all()}

    async def written_at(self, types: Set[str], at: datetime) -> bool:
        """Whether a current row of one of ``types`` was last written at ``at``."""
        r = ResourceRow
        for resource_type in types:
            stmt = select(r.id).where(r.resource_type == resource_type, r.last_updated == at)
            if (await self.session.execute(stmt.limit(1))).first() is not None:
                return True
        return False


def present_query(keys: Set[tuple[str, str]]) -> Select[tuple[str, str]]:
    """The ``(type, id)`` of ``keys`` that have a current row (deleted ones included)."""
    r = ResourceRow
    return select(r.resource_type, r.id).where(keys_clause(keys))


def save_progress(
    session: Session,
    job_id: str,
    index: int,
    progress: FileProgress | Callable[[FileProgress], FileProgress],
    errors: list[dict[str, Any]] | None = None,
) -> None:
    """Set the progress of the job's file ``index`` in ``session``'s transaction: ``progress``,
    or what a function makes of the stored one (an import writer's chunk)."""
    job = session.get(ImportJobRow, job_id, with_for_update=True)
    if job is None:
        return
    files = list(job.progress)
    if callable(progress):
        progress = progress(FileProgress.from_json(files[index]))
    files[index] = progress.to_json()
    job.progress = files
    if errors is not None:
        job.errors = list(errors)
    job.updated_at = utcnow()
