"""Create, update and delete (alone or as a Bundle's entries), each audited before it is made.

Updates take ``If-Match: W/"n"`` (412 when stale). A create, update or delete of a request
waits for its write slot (:mod:`medmesh.phi.admission`) here, once its body is parsed; the
``apply_*`` forms run inside a slot already taken (a Bundle's entries).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.phi.context import FhirContext
from medmesh.phi.fhir.compartment import compartment_patient
from medmesh.phi.fhir.errors import FhirError, InvalidResource, VersionConflict
from medmesh.phi.fhir.validation import validate_resource
from medmesh.phi.models import ResourceRow
from medmesh.phi.resources.reads import ResourceReads
from medmesh.phi.resources.repository import ResourceRepository
from medmesh.phi.resources.stored import Stored, check_id, check_type, parse_etag
from medmesh.platform.db import utcnow
from medmesh.platform.ids import uuid7_hex


class ResourceWrites(ResourceReads):
    async def create(
        self,
        session: AsyncSession,
        ctx: FhirContext,
        resource: Any,
        resource_type: str,
        *,
        if_none_exist: str | None = None,
    ) -> tuple[Stored, bool]:
        """Create ``resource`` with a server-assigned id; returns it and True. With
        ``if_none_exist`` (a search query), returns the one match (read and audited) and False
        instead when there is one, and refuses (412) when there are several."""
        async with self.writes.slot(ctx.principal, resource_type, "c"):
            if if_none_exist:
                if self.conditions is None:
                    raise RuntimeError("ResourceService.conditions is not set")
                matches = await self.conditions.match(session, ctx, resource_type, if_none_exist)
                if len(matches) > 1:
                    raise VersionConflict(
                        "If-None-Exist matches more than one resource", issue_code="duplicate"
                    )
                if matches:
                    return await self.read(session, ctx, resource_type, matches[0]), False
            # Without a condition the create is all the request writes (see ResourceStore.write).
            alone = not if_none_exist
            return await self._create(session, ctx, resource, resource_type, alone=alone), True

    async def _create(
        self,
        session: AsyncSession,
        ctx: FhirContext,
        resource: Any,
        resource_type: str,
        *,
        alone: bool = False,
    ) -> Stored:
        await self.check_create(ctx, resource, resource_type)
        resource_id = uuid7_hex()
        patient = compartment_patient({**resource, "id": resource_id})
        stored, _ = await self._write_audited(
            session,
            ctx,
            "fhir.create",
            resource,
            resource_id,
            [patient],
            method="POST",
            server_assigned=True,
            alone=alone,
        )
        return stored

    async def _write_audited(
        self,
        session: AsyncSession,
        ctx: FhirContext,
        action: str,
        resource: dict[str, Any],
        resource_id: str,
        patients: list[str | None],
        *,
        if_match: int | None = None,
        method: str = "PUT",
        server_assigned: bool = False,
        alone: bool = False,
        **details: Any,
    ) -> tuple[Stored, bool]:
        """Audit a checked write, then make it.

        The record is durable before the first write statement, so the write never waits for
        the audit trail while it holds SQLite's single write lock (every other writer would
        wait too), and a process killed in between leaves a record of an attempt, never a
        change without one. A write refused after its record (a concurrent update took the
        version) is recorded again as a failure.
        """
        about = {"resource_type": resource["resourceType"], "resource_id": resource_id}
        await self.auditor.record(ctx, action, patients=patients, **about, **details)
        try:
            return await self.write(
                session,
                resource,
                resource_id=resource_id,
                if_match=if_match,
                method=method,
                server_assigned=server_assigned,
                alone=alone,
            )
        except FhirError as exc:
            await self.auditor.record(
                ctx,
                action,
                patients=patients,
                outcome="failure",
                reason=exc.code,
                status=exc.status,
                **about,
            )
            raise

    async def check_create(self, ctx: FhirContext, resource: Any, resource_type: str) -> None:
        """Validate ``resource``, bring its references to their canonical form (in place) and
        check the caller may create it (a refusal is audited)."""
        check_type(resource_type)
        validate_resource(
            resource,
            expected_type=resource_type,
            max_depth=self.max_depth,
            bases=lambda: ctx.local_bases,
        )
        patient = compartment_patient(resource) if resource_type != "Patient" else None
        await self._require(ctx, "c", resource_type, patient, resource, "fhir.create")

    async def update(
        self,
        session: AsyncSession,
        ctx: FhirContext,
        resource_type: str,
        resource_id: str,
        resource: Any,
        if_match: str | None,
    ) -> tuple[Stored, bool]:
        """Replace (or create, with the client's id) a resource; returns it and whether it was
        created."""
        async with self.writes.slot(ctx.principal, resource_type, "cu"):
            return await self.apply_update(
                session, ctx, resource_type, resource_id, resource, if_match
            )

    async def apply_update(
        self,
        session: AsyncSession,
        ctx: FhirContext,
        resource_type: str,
        resource_id: str,
        resource: Any,
        if_match: str | None,
    ) -> tuple[Stored, bool]:
        """:meth:`update` inside a write slot already taken."""
        check_type(resource_type)
        check_id(resource_id)
        validate_resource(
            resource,
            expected_type=resource_type,
            max_depth=self.max_depth,
            bases=lambda: ctx.local_bases,
        )
        if resource.get("id") != resource_id:
            raise InvalidResource(
                "the resource id must match the id in the URL",
                issue_code="invalid",
                expression=[f"{resource_type}.id"],
            )
        existing = await ResourceRepository(session).get(resource_type, resource_id)
        old_patient = existing.patient_id if existing is not None and not existing.deleted else None
        new_patient = compartment_patient(resource)
        permission = "u" if existing is not None and not existing.deleted else "c"
        if existing is not None and not existing.deleted:
            # The stored version decides too: a category-limited scope must cover what it replaces.
            old_resource = self.open_row(existing).resource
            await self._require(
                ctx, "u", resource_type, old_patient, old_resource, "fhir.update", resource_id
            )
        await self._require(
            ctx, permission, resource_type, new_patient, resource, "fhir.update", resource_id
        )
        return await self._write_audited(
            session,
            ctx,
            "fhir.update",
            resource,
            resource_id,
            [old_patient, new_patient],
            if_match=parse_etag(if_match) if if_match else None,
            created=existing is None or existing.deleted,
        )

    async def delete(
        self, session: AsyncSession, ctx: FhirContext, resource_type: str, resource_id: str
    ) -> None:
        """Delete a resource (its history stays); deleting what is not there succeeds."""
        async with self.writes.slot(ctx.principal, resource_type, "d"):
            await self.apply_delete(session, ctx, resource_type, resource_id)

    async def apply_delete(
        self, session: AsyncSession, ctx: FhirContext, resource_type: str, resource_id: str
    ) -> None:
        """:meth:`delete` inside a write slot already taken."""
        check_type(resource_type)
        check_id(resource_id)
        repo = ResourceRepository(session)
        row = await repo.get(resource_type, resource_id)
        if row is None or row.deleted:
            # Deleting what is not there succeeds (idempotent), but is still checked and audited.
            await self._require(
                ctx,
                "d",
                resource_type,
                row.patient_id if row else None,
                None,
                "fhir.delete",
                resource_id,
            )
            await self.auditor.record(
                ctx,
                "fhir.delete",
                resource_type=resource_type,
                resource_id=resource_id,
                existed=False,
            )
            return
        await self._require(
            ctx,
            "d",
            resource_type,
            row.patient_id,
            self.open_row(row).resource,
            "fhir.delete",
            resource_id,
        )
        await self.auditor.record(
            ctx,
            "fhir.delete",
            resource_type=resource_type,
            resource_id=resource_id,
            patients=[row.patient_id],
        )
        now = utcnow()
        version = row.version + 1
        tombstone = ResourceRow(
            resource_type=resource_type,
            id=resource_id,
            version=version,
            last_updated=now,
            deleted=True,
            patient_id=row.patient_id,
        )
        if not await repo.replace(tombstone, row.version):
            await self.auditor.record(
                ctx,
                "fhir.delete",
                resource_type=resource_type,
                resource_id=resource_id,
                patients=[row.patient_id],
                outcome="failure",
                reason="conflict",
                status=412,
            )
            raise VersionConflict(f"{resource_type}/{resource_id} was changed concurrently")
        await repo.add_version_of(tombstone, "DELETE", None)
        await self.index.remove(session, resource_type, resource_id)
        if resource_type == "Consent" and self.consents is not None:
            self.consents.changed(session)
