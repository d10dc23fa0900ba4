"""``$validate``: what a create, update or delete would meet, stored nowhere, audited."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.phi.access.policy import AccessDenied
from medmesh.phi.context import FhirContext
from medmesh.phi.fhir.compartment import compartment_patient
from medmesh.phi.fhir.errors import InvalidResource, ResourceNotFound
from medmesh.phi.fhir.validation import validate_resource
from medmesh.phi.resources.repository import ResourceRepository
from medmesh.phi.resources.storage import ResourceStore
from medmesh.phi.resources.stored import check_id, check_type


class ResourceValidation(ResourceStore):
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
                bases=lambda: ctx.local_bases,
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
