"""Create, read, update, delete, vread and history of FHIR resources.

Versions: every write stores a new version (``meta.versionId`` 1, 2, ...) and
``meta.lastUpdated``; deletes store a body-less version and later reads answer
410. Updates take ``If-Match: W/"n"`` (412 when stale) and are safe under
concurrency: the current row moves from version n to n+1 only if it is still n.

A create, update or delete of a request waits for its write slot
(:mod:`medmesh.phi.admission`) here, once its body is parsed; the ``apply_*`` forms run inside a
slot already taken (a Bundle's entries).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.phi.access.policy import AccessDenied
from medmesh.phi.admission import WriteAdmission
from medmesh.phi.auditing import PhiAuditor
from medmesh.phi.context import FhirContext
from medmesh.phi.fhir.compartment import compartment_patient
from medmesh.phi.fhir.errors import (
    FhirError,
    InvalidResource,
    ResourceGone,
    ResourceNotFound,
    VersionConflict,
)
from medmesh.phi.fhir.references import canonicalize_references
from medmesh.phi.fhir.types import fhir_instant
from medmesh.phi.fhir.validation import validate_resource
from medmesh.phi.models import ResourceRow, ResourceVersionRow
from medmesh.phi.protection import PhiProtection
from medmesh.phi.resources.repository import CurrentRow, ResourceRepository, get_committed
from medmesh.phi.resources.stored import Stored, check_id, check_type, parse_etag
from medmesh.phi.search.index import SearchIndex
from medmesh.platform.crypto import DecryptionFailed
from medmesh.platform.db import Database, execute_together, utcnow
from medmesh.platform.ids import uuid7_hex
from medmesh.platform.logging import get_logger

if TYPE_CHECKING:
    from medmesh.phi.access.consent import ConsentRegistry


_log = get_logger("medmesh.phi.resources")


class ConditionalMatch(Protocol):
    """Finds what a conditional request's query names, as a search by the caller
    (:meth:`medmesh.phi.search.service.SearchService.match`)."""

    async def match(
        self, session: AsyncSession, ctx: FhirContext, resource_type: str, query: str
    ) -> list[str]: ...


class ResourceService:
    def __init__(
        self,
        protection: PhiProtection,
        index: SearchIndex,
        auditor: PhiAuditor,
        max_depth: int = 64,
        *,
        writes: WriteAdmission,
        consents: ConsentRegistry | None = None,
    ) -> None:
        self.protection = protection
        self.index = index
        self.auditor = auditor
        self.max_depth = max_depth
        #: Admission of writes (``PhiSettings.concurrent_writes``, ``writes_per_client``).
        self.writes = writes
        self.consents = consents
        #: Evaluates ``If-None-Exist`` (the search service, set once it is built).
        self.conditions: ConditionalMatch | None = None

    # --- storage primitives (also used by bundles) ------------------------------------------

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
    ) -> tuple[Stored, bool]:
        """Store a validated ``resource`` as a new version; returns it and whether it was created.

        ``server_assigned``: ``resource_id`` was just drawn by :meth:`create` (random, so new)."""
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
        row = ResourceRow(
            resource_type=resource_type,
            id=resource_id,
            version=version,
            last_updated=stored.last_updated,
            deleted=False,
            patient_id=stored.patient_id,
            body=body,
        )
        if current is None:
            # The first version: every write is an insert, all run in one trip.
            await execute_together(
                session,
                [
                    *repo.new_resource_inserts(row, method),
                    *self.index.new_resource_inserts(
                        session, resource_type, resource_id, index_rows
                    ),
                ],
            )
        else:
            if not await repo.replace(row, current.version):
                raise VersionConflict(
                    f"{resource_type}/{resource_id} was changed concurrently",
                    issue_code="conflict",
                )
            await repo.add_version_of(row, method)
            await self.index.write(session, resource_type, resource_id, stored.resource, index_rows)
        if resource_type == "Consent" and self.consents is not None:
            self.consents.changed(session)
        return stored, current is None or current.deleted

    def seal_version(
        self, resource: dict[str, Any], resource_id: str, version: int, now: datetime
    ) -> tuple[Stored, bytes]:
        """``resource`` as version ``version`` (id and ``meta`` stamped) and its sealed body."""
        resource_type: str = resource["resourceType"]
        stored_resource = dict(resource)
        stored_resource["id"] = resource_id
        meta = dict(stored_resource.get("meta") or {})
        meta["versionId"] = str(version)
        meta["lastUpdated"] = fhir_instant(now)
        stored_resource["meta"] = meta
        patient_id = compartment_patient(stored_resource)
        body = self.protection.seal(stored_resource, resource_type, resource_id, version)
        return Stored(stored_resource, resource_type, resource_id, version, now, patient_id), body

    async def current(self, session: AsyncSession, resource_type: str, resource_id: str) -> Stored:
        row = await ResourceRepository(session).get(resource_type, resource_id)
        return self._opened(row, resource_type, resource_id)

    def _opened(self, row: CurrentRow | None, resource_type: str, resource_id: str) -> Stored:
        if row is None:
            raise ResourceNotFound(f"{resource_type}/{resource_id} is not known")
        if row.deleted:
            raise ResourceGone(f"{resource_type}/{resource_id} was deleted")
        return self.open_row(row)

    # --- the REST interactions ----------------------------------------------------------------

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
            return await self._create(session, ctx, resource, resource_type), True

    async def _create(
        self, session: AsyncSession, ctx: FhirContext, resource: Any, resource_type: str
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
            prepare=lambda body, kind: canonicalize_references(body, kind, lambda: ctx.local_bases),
        )
        patient = compartment_patient(resource) if resource_type != "Patient" else None
        await self._require(ctx, "c", resource_type, patient, resource, "fhir.create")

    async def validate(
        self,
        session: AsyncSession,
        ctx: FhirContext,
        resource_type: str,
        resource_id: str | None,
        resource: Any,
        mode: str | None,
    ) -> list[dict[str, Any]]:
        """``$validate``: the issues of ``resource`` as a create (``mode`` None or ``create``) or
        an update of ``resource_id`` (``update``) would meet them, or whether ``resource_id``
        may be deleted (``delete``, no resource); stores nothing. The caller needs the
        permission the mode names on the resource's compartment (403 otherwise); audited."""
        check_type(resource_type)
        if resource_id is not None:
            check_id(resource_id)
        if mode not in (None, "create", "update", "delete"):
            raise InvalidResource("mode is create, update or delete", issue_code="value")
        if mode in ("update", "delete") and resource_id is None:
            raise InvalidResource(f"mode {mode} validates an instance: {resource_type}/{{id}}")
        letter = {"update": "u", "delete": "d"}.get(mode or "create", "c")
        if not ctx.principal.scopes.smart_scopes_for(resource_type, letter):
            await self.auditor.record(
                ctx,
                "fhir.validate",
                resource_type=resource_type,
                resource_id=resource_id,
                outcome="failure",
                reason="forbidden",
            )
            raise AccessDenied(
                f"the access token does not allow $validate of {resource_type} in mode "
                f"{mode or 'create'} (needs user/{resource_type}.{letter} or "
                f"patient/{resource_type}.{letter})"
            )
        existing = None
        if resource_id is not None:
            row = await ResourceRepository(session).get(resource_type, resource_id)
            if row is not None and not row.deleted:
                existing = self.open_row(row)
            elif mode == "delete":
                raise ResourceNotFound(f"{resource_type}/{resource_id} is not there to delete")
        if existing is not None and mode in ("update", "delete"):
            await self._require(
                ctx,
                letter,
                resource_type,
                existing.patient_id,
                existing.resource,
                "fhir.validate",
                resource_id,
            )
        patients = [existing.patient_id if existing is not None else None]
        issues: list[dict[str, Any]] = []
        if mode != "delete":
            issues = self._validation_issues(ctx, resource_type, resource_id, resource, mode)
            patient = compartment_patient(resource) if not issues else None
            if not issues:
                letter = "u" if existing is not None and mode == "update" else "c"
                await self._require(
                    ctx, letter, resource_type, patient, resource, "fhir.validate", resource_id
                )
                patients.append(patient)
        await self.auditor.record(
            ctx,
            "fhir.validate",
            resource_type=resource_type,
            resource_id=resource_id,
            patients=patients,
            mode=mode or "create",
            issues=len(issues),
        )
        return issues

    def _validation_issues(
        self,
        ctx: FhirContext,
        resource_type: str,
        resource_id: str | None,
        resource: Any,
        mode: str | None,
    ) -> list[dict[str, Any]]:
        """The OperationOutcome issues of ``resource`` (none when it is valid)."""
        try:
            validate_resource(
                resource,
                expected_type=resource_type,
                max_depth=self.max_depth,
                prepare=lambda body, kind: canonicalize_references(
                    body, kind, lambda: ctx.local_bases
                ),
            )
        except InvalidResource as exc:
            if exc.extra.get("issue_code") == "too-costly":
                raise
            listed = exc.extra.get("issues")
            if isinstance(listed, list):
                return listed
            issue: dict[str, Any] = {
                "severity": "error",
                "code": exc.extra.get("issue_code") or "invalid",
                "diagnostics": exc.message,
            }
            if exc.extra.get("expression"):
                issue["expression"] = list(exc.extra["expression"])
            return [issue]
        if mode == "update" and resource.get("id") != resource_id:
            return [
                {
                    "severity": "error",
                    "code": "invalid",
                    "diagnostics": "the resource id must match the id in the URL",
                    "expression": [f"{resource_type}.id"],
                }
            ]
        return []

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
            prepare=lambda body, kind: canonicalize_references(body, kind, lambda: ctx.local_bases),
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
            body=None,
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
        await repo.add_version_of(tombstone, "DELETE")
        await self.index.remove(session, resource_type, resource_id)
        if resource_type == "Consent" and self.consents is not None:
            self.consents.changed(session)

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
