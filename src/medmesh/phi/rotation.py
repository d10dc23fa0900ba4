"""Key rotation: re-wrap every stored version under the active key-encryption key.

After a new key is put first in ``MEDMESH_PHI_ENCRYPTION_KEYS`` (old keys stay in the
list so that existing data keeps opening), :class:`KeyRotation` walks
``resource_versions`` in primary-key order, one page per transaction, and re-wraps each
body sealed under an older key (``PhiProtection.reseal``: the body is authenticated
first, then only its data key is re-wrapped). The current row (``resources``) shares its
body with its latest version and is updated with it.

The walk is resumable: each page commits on its own, bodies already under the active key
are skipped, and ``start_after`` continues from the last key a previous run reported.
New writes during a rotation are sealed under the active key already. When a run reports
``remaining == 0`` the old keys can be removed from the setting.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.phi.config import PhiSettings
from medmesh.phi.models import ResourceRow, ResourceVersionRow
from medmesh.phi.protection import PhiProtection, load_protection
from medmesh.platform.audit import (
    AuditRecord,
    AuditTrail,
    audit_database_for,
    audit_sealing,
    ensure_audit_tables,
)
from medmesh.platform.db import Database
from medmesh.platform.paging import keyset_page

#: ``(resource_type, id, version)`` of a stored version: the walk's cursor.
VersionKey = tuple[str, str, int]


@dataclass
class RotationReport:
    """What a rotation run did: versions looked at, re-wrapped, and still under old keys."""

    active_kid: str
    scanned: int = 0
    rotated: int = 0
    current_rows: int = 0
    pages: int = 0
    last_key: VersionKey | None = None
    remaining: int = 0


class RotationRepository:
    """The queries of key rotation."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def page(
        self, after: VersionKey | None, limit: int
    ) -> Sequence[tuple[str, str, int, bytes]]:
        """Keys and bodies of stored (not deleted) versions after ``after``, in the order of
        the versions' primary key (id, type, version: migration 0009)."""
        v = ResourceVersionRow
        stmt = keyset_page(
            select(v.resource_type, v.id, v.version, v.body).where(v.body.is_not(None)),
            [v.id, v.resource_type, v.version],
            None if after is None else (after[1], after[0], after[2]),
            limit,
        )
        rows = (await self.session.execute(stmt)).all()
        return [(r[0], r[1], r[2], r[3]) for r in rows if r[3] is not None]

    async def set_version_body(self, key: VersionKey, body: bytes) -> None:
        v = ResourceVersionRow
        await self.session.execute(
            update(v)
            .where(v.resource_type == key[0], v.id == key[1], v.version == key[2])
            .values(body=body)
            .execution_options(synchronize_session=False)
        )

    async def is_current(self, key: VersionKey) -> bool:
        """Whether the version is its resource's current one (the current row reads its body)."""
        r = ResourceRow
        found = await self.session.scalar(
            select(r.version).where(r.resource_type == key[0], r.id == key[1], r.version == key[2])
        )
        return found is not None


class KeyRotation:
    """Re-wraps stored bodies under ``protection``'s active key, page by page."""

    def __init__(
        self, database: Database, protection: PhiProtection, *, page_size: int = 500
    ) -> None:
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        self.database = database
        self.protection = protection
        self.page_size = page_size

    async def run(
        self,
        *,
        start_after: VersionKey | None = None,
        max_pages: int | None = None,
        on_page: Callable[[RotationReport], None] | None = None,
    ) -> RotationReport:
        """Rotate from ``start_after`` to the end (or ``max_pages`` pages); commit per page."""
        report = RotationReport(active_kid=self.protection.keys.active_kid)
        cursor = start_after
        while max_pages is None or report.pages < max_pages:
            async with self.database.unit_of_work() as session:
                repo = RotationRepository(session)
                page = await repo.page(cursor, self.page_size)
                if not page:
                    break
                for resource_type, resource_id, version, body in page:
                    key = (resource_type, resource_id, version)
                    fresh = self.protection.reseal(body, resource_type, resource_id, version)
                    report.scanned += 1
                    if fresh is None:
                        continue
                    await repo.set_version_body(key, fresh)
                    if await repo.is_current(key):
                        report.current_rows += 1
                    report.rotated += 1
                cursor = (page[-1][0], page[-1][1], page[-1][2])
            report.pages += 1
            report.last_key = cursor
            if on_page is not None:
                on_page(report)
            if len(page) < self.page_size:
                break
        report.remaining = await self.count_remaining()
        return report

    async def count_remaining(self) -> int:
        """How many stored versions are still wrapped under a key other than the active one."""
        remaining, cursor = 0, None
        while True:
            async with self.database.unit_of_work() as session:
                page = await RotationRepository(session).page(cursor, 2000)
            if not page:
                return remaining
            remaining += sum(1 for *_, body in page if self.protection.keys.needs_rotation(body))
            cursor = (page[-1][0], page[-1][1], page[-1][2])


async def rotate_stored_keys(
    settings: PhiSettings,
    *,
    page_size: int = 500,
    start_after: VersionKey | None = None,
    actor: str = "cli",
    on_page: Callable[[RotationReport], None] | None = None,
) -> RotationReport:
    """Run a rotation on the database of ``settings`` and audit it (``phi.keys_rotated``).

    The audit record holds the counts and key ids only; a failed run is audited as a failure.
    """
    protection = load_protection(settings)
    database = Database(settings.effective_database_url)
    audit_db = audit_database_for(database)
    if audit_db is not database:
        await ensure_audit_tables(audit_db)
    trail = AuditTrail(audit_db, settings.service_name, sealing=audit_sealing(settings))
    await trail.start()
    report = RotationReport(active_kid=protection.keys.active_kid)
    outcome = "failure"
    try:
        rotation = KeyRotation(database, protection, page_size=page_size)
        report = await rotation.run(start_after=start_after, on_page=on_page)
        outcome = "success"
        return report
    finally:
        await trail.record(
            AuditRecord(
                action="phi.keys_rotated",
                outcome=outcome,
                actor=actor,
                resource_type="EncryptionKey",
                resource_id=protection.keys.active_kid,
                details={
                    "scanned": report.scanned,
                    "rotated": report.rotated,
                    "remaining": report.remaining,
                    "pages": report.pages,
                },
            )
        )
        await trail.stop()
        await database.dispose()
        if audit_db is not database:
            await audit_db.dispose()
