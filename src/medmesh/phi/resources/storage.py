"""The storage primitives of FHIR resources: versions sealed, written, opened; the policy check.

Versions: every write stores a new version (``meta.versionId`` 1, 2, ...) and
``meta.lastUpdated``; deletes store a body-less version and later reads answer
410. The current row moves from version n to n+1 only if it is still n, so
concurrent updates are safe. Bundles use these primitives directly.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.phi.admission import WriteAdmission
from medmesh.phi.auditing import PhiAuditor
from medmesh.phi.context import FhirContext
from medmesh.phi.fhir.compartment import compartment_patient
from medmesh.phi.fhir.errors import FhirError, ResourceGone, ResourceNotFound, VersionConflict
from medmesh.phi.fhir.types import fhir_instant
from medmesh.phi.models import ResourceRow, ResourceVersionRow
from medmesh.phi.protection import PhiProtection
from medmesh.phi.resources.repository import CurrentRow, ResourceRepository
from medmesh.phi.resources.stored import Stored
from medmesh.phi.search.index import SearchIndex
from medmesh.platform.crypto import BatchSealer, DecryptionFailed
from medmesh.platform.db import Database, execute_together, utcnow
from medmesh.platform.db.direct_writes import direct_applies, write_transaction
from medmesh.platform.ids import uuid7_hex
from medmesh.platform.logging import get_logger

if TYPE_CHECKING:
    from medmesh.phi.access.consent import ConsentRegistry


_log = get_logger("medmesh.phi.resources")


def seal_version(
    protection: PhiProtection,
    resource: dict[str, Any],
    resource_id: str,
    version: int,
    now: datetime,
    batch: BatchSealer | None = None,
) -> tuple[Stored, bytes]:
    """``resource`` as version ``version`` (id and ``meta`` stamped) and its body sealed with
    ``protection``'s keys (under ``batch``'s data key when given)."""
    resource_type: str = resource["resourceType"]
    stored_resource = dict(resource)
    stored_resource["id"] = resource_id
    meta = dict(stored_resource.get("meta") or {})
    meta["versionId"] = str(version)
    meta["lastUpdated"] = fhir_instant(now)
    stored_resource["meta"] = meta
    patient_id = compartment_patient(stored_resource)
    body = protection.seal(stored_resource, resource_type, resource_id, version, batch)
    return Stored(stored_resource, resource_type, resource_id, version, now, patient_id), body


class ConditionalMatch(Protocol):
    """Finds what a conditional request's query names, as a search by the caller
    (:meth:`medmesh.phi.search.service.SearchService.match`)."""

    async def match(
        self, session: AsyncSession, ctx: FhirContext, resource_type: str, query: str
    ) -> list[str]: ...


class ResourceStore:
    """What every resource interaction shares: keys, index, audit, admission, storage."""

    def __init__(
        self,
        protection: PhiProtection,
        index: SearchIndex,
        auditor: PhiAuditor,
        max_depth: int = 64,
        *,
        writes: WriteAdmission,
        consents: ConsentRegistry | None = None,
        database: Database | None = None,
    ) -> None:
        self.protection = protection
        self.index = index
        self.auditor = auditor
        self.max_depth = max_depth
        #: Admission of writes (``PhiSettings.concurrent_writes``, ``writes_per_client``).
        self.writes = writes
        self.consents = consents
        #: The database, for a create's write transaction of its own (:meth:`write`, ``alone``).
        self.database = database
        #: Evaluates ``If-None-Exist`` (the search service, set once it is built).
        self.conditions: ConditionalMatch | None = None

    def open_row(self, row: CurrentRow | ResourceVersionRow) -> Stored:
        if row.body is None:
            raise ResourceGone(f"{row.resource_type}/{row.id} was deleted")
        try:
            resource = self.protection.open(row.body, row.resource_type, row.id, row.version)
        except DecryptionFailed:
            # Not the client's fault: the stored version was altered, moved or its key is gone.
            _log.error(
                "stored_resource_unreadable",
                resource_type=row.resource_type,
                resource_id=row.id,
                version=row.version,
            )
            raise FhirError(
                "the stored resource cannot be read", status=500, issue_code="exception"
            ) from None
        return Stored(
            resource, row.resource_type, row.id, row.version, row.last_updated, row.patient_id
        )

    async def write(
        self,
        session: AsyncSession,
        resource: dict[str, Any],
        *,
        resource_id: str | None = None,
        if_match: int | None = None,
        method: str = "PUT",
        server_assigned: bool = False,
        alone: bool = False,
    ) -> tuple[Stored, bool]:
        """Store a validated ``resource`` as a new version; returns it and whether it was created.

        ``server_assigned``: ``resource_id`` was just drawn by :meth:`create` (random, so new).
        ``alone``: this write is all its request writes (see :meth:`_own_transaction`)."""
        repo = ResourceRepository(session)
        resource_type = resource["resourceType"]
        resource_id = resource_id or uuid7_hex()
        # A server-assigned id is new: nothing to look up (a clash of 74 random bits in one
        # millisecond would fail the insert's primary key, never overwrite).
        current = None if server_assigned else await repo.get(resource_type, resource_id)
        if if_match is not None and (current is None or current.version != if_match):
            raise VersionConflict(
                f"{resource_type}/{resource_id} is not at version {if_match}", issue_code="conflict"
            )
        version = 1 if current is None else current.version + 1
        stored, body = self.seal_version(resource, resource_id, version, utcnow())
        # Everything is computed before the first write: from it to the commit this request
        # holds SQLite's single write lock, and every other writer waits.
        index_rows = self.index.rows(resource_type, stored.resource)
        values: dict[str, Any] = {
            "resource_type": resource_type,
            "id": resource_id,
            "version": version,
            "last_updated": stored.last_updated,
            "deleted": False,
            "patient_id": stored.patient_id,
        }
        if current is None:
            # The first version: every write is an insert, all run in one trip.
            inserts = [
                *repo.new_resource_inserts(values, method, body),
                *self.index.new_resource_inserts(session, resource_type, resource_id, index_rows),
            ]
            if alone and self._own_transaction(session, resource_type):
                assert self.database is not None
                async with write_transaction(self.database) as transaction:
                    await transaction.execute_all(inserts)
            else:
                await execute_together(session, inserts)
        else:
            row = ResourceRow(**values)
            if not await repo.replace(row, current.version):
                raise VersionConflict(
                    f"{resource_type}/{resource_id} was changed concurrently",
                    issue_code="conflict",
                )
            await repo.add_version_of(row, method, body)
            await self.index.write(session, resource_type, resource_id, stored.resource, index_rows)
        if resource_type == "Consent" and self.consents is not None:
            self.consents.changed(session)
        return stored, current is None or current.deleted

    def _own_transaction(self, session: AsyncSession, resource_type: str) -> bool:
        """Whether a new resource that is all its request writes commits in a write transaction
        of its own, outside the request's session: on the embedded SQLite driver, where
        concurrent requests' transactions commit together (``platform.db.write_transaction``),
        while the session has begun nothing (its own transaction would otherwise hold what it
        read or wrote apart from the create), and not for a Consent (the consent registry
        learns of those at the session's commit)."""
        return (
            self.database is not None
            and resource_type != "Consent"
            and not session.in_transaction()
            and direct_applies(self.database)
        )

    def seal_version(
        self,
        resource: dict[str, Any],
        resource_id: str,
        version: int,
        now: datetime,
        batch: BatchSealer | None = None,
    ) -> tuple[Stored, bytes]:
        """``resource`` as version ``version`` (id and ``meta`` stamped) and its sealed body
        (under ``batch``'s data key when given)."""
        return seal_version(self.protection, resource, resource_id, version, now, batch)

    async def current(self, session: AsyncSession, resource_type: str, resource_id: str) -> Stored:
        row = await ResourceRepository(session).get(resource_type, resource_id)
        return self._opened(row, resource_type, resource_id)

    def _opened(self, row: CurrentRow | None, resource_type: str, resource_id: str) -> Stored:
        if row is None:
            raise ResourceNotFound(f"{resource_type}/{resource_id} is not known")
        if row.deleted:
            raise ResourceGone(f"{resource_type}/{resource_id} was deleted")
        return self.open_row(row)

    async def _require(
        self,
        ctx: FhirContext,
        permission: str,
        resource_type: str,
        patient_id: str | None,
        resource: dict[str, Any] | None,
        action: str,
        resource_id: str | None = None,
    ) -> None:
        if ctx.policy.allows(permission, resource_type, patient_id, resource):
            return
        await self.auditor.record(
            ctx,
            action,
            resource_type=resource_type,
            resource_id=resource_id,
            patients=[patient_id],
            outcome="failure",
            reason="forbidden",
        )
        ctx.policy.require(permission, resource_type, patient_id, resource)
