"""Read and vread: the stored version, checked against the caller's policy and audited."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.phi.context import FhirContext
from medmesh.phi.fhir.errors import ResourceNotFound
from medmesh.phi.resources.repository import CurrentRow, ResourceRepository, get_committed
from medmesh.phi.resources.storage import ResourceStore
from medmesh.phi.resources.stored import Stored, check_id, check_type
from medmesh.platform.db import Database


class ResourceReads(ResourceStore):
    async def read(
        self,
        source: AsyncSession | Database,
        ctx: FhirContext,
        resource_type: str,
        resource_id: str,
    ) -> Stored:
        """The current version, checked against the caller's policy and audited.

        ``source`` is a session (a read inside a transaction sees its writes), or, for a
        request that writes nothing (the read route), the database: the row as last
        committed, read outside any session (:class:`~medmesh.platform.db.fast.OneRowRead`), so
        the request opens none and has no transaction to end."""
        check_type(resource_type)
        check_id(resource_id)
        row: CurrentRow | None
        if isinstance(source, Database):
            row = await get_committed(source, resource_type, resource_id)
        else:
            row = await ResourceRepository(source).get(resource_type, resource_id)
        stored = self._opened(row, resource_type, resource_id)
        await self._require(
            ctx,
            "r",
            stored.resource_type,
            stored.patient_id,
            stored.resource,
            "fhir.read",
            stored.id,
        )
        await self.auditor.record(
            ctx,
            "fhir.read",
            resource_type=stored.resource_type,
            resource_id=stored.id,
            patients=[stored.patient_id],
        )
        return stored

    async def vread(
        self,
        session: AsyncSession,
        ctx: FhirContext,
        resource_type: str,
        resource_id: str,
        version: str,
    ) -> Stored:
        check_type(resource_type)
        check_id(resource_id)
        if not (version.isascii() and version.isdigit()):
            raise ResourceNotFound("no such version")
        row = await ResourceRepository(session).get_version(
            resource_type, resource_id, int(version)
        )
        if row is None:
            raise ResourceNotFound(f"{resource_type}/{resource_id} has no version {version}")
        if row.body is None:
            await self._require(
                ctx, "r", resource_type, row.patient_id, None, "fhir.vread", resource_id
            )
        stored = self.open_row(row)
        await self._require(
            ctx, "r", resource_type, row.patient_id, stored.resource, "fhir.vread", resource_id
        )
        await self.auditor.record(
            ctx,
            "fhir.vread",
            resource_type=resource_type,
            resource_id=resource_id,
            patients=[row.patient_id],
            version=row.version,
        )
        return stored
