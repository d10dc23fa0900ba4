"""Every PHI access is audited before the answer leaves: who, what, which patients, outcome, purpose.

A request that fails after the caller was authenticated but before its operation wrote a record
(a read answering 404 or 410, a create refused with 400) gets one ``failure`` record when its
OperationOutcome is sent (:meth:`PhiAuditor.record_failure`); ``GET /fhir/metadata`` is recorded
too (:meth:`PhiAuditor.record_capabilities`).
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from typing import Any

from starlette.requests import Request

from medmesh.phi.access.break_glass import _SCOPE_KEY as _POLICIES
from medmesh.phi.access.policy import AccessPolicy
from medmesh.phi.context import FhirContext
from medmesh.phi.fhir.types import ID_PATTERN, SUPPORTED_TYPES
from medmesh.platform.audit import AuditRecord, AuditTrail, AuditWriteFailed
from medmesh.platform.errors import MedmeshError
from medmesh.platform.logging import get_logger
from medmesh.platform.origin import RequestOrigin
from medmesh.platform.tokens import Principal, get_principal

log = get_logger("medmesh.phi.auditing")

_BY_METHOD = {
    "GET": "fhir.read",
    "PUT": "fhir.update",
    "PATCH": "fhir.patch",
    "DELETE": "fhir.delete",
}


def _action(method: str, path: str) -> tuple[str, str | None, str | None]:
    """The action a failed request attempted, and the resource type and id its URL names (only
    when they have the shape of a supported type and a FHIR id: URLs are the client's text)."""
    parts = [part for part in path.removeprefix("/fhir").split("/") if part]
    if any(part.startswith("$") for part in parts):
        operation = next(part for part in parts if part.startswith("$"))
        known = {"$everything": "fhir.everything", "$validate": "fhir.validate"}
        action = known.get(operation, "fhir.operation")
    elif not parts:
        action = "fhir.transaction" if method == "POST" else "fhir.operation"
    elif parts[0] in ("_history", "_search"):
        action = "fhir.history" if parts[0] == "_history" else "fhir.search"
    elif len(parts) == 1:
        action = {"POST": "fhir.create", "DELETE": "fhir.delete"}.get(method, "fhir.search")
    elif parts[1] in ("_history", "_search"):
        action = "fhir.history" if parts[1] == "_history" else "fhir.search"
    elif len(parts) == 2:
        action = _BY_METHOD.get(method, "fhir.operation")
    elif parts[2] == "_history":
        action = "fhir.vread" if len(parts) == 4 else "fhir.history"
    else:
        action = "fhir.operation"
    resource_type = parts[0] if parts and parts[0] in SUPPORTED_TYPES else None
    resource_id = parts[1] if len(parts) > 1 and ID_PATTERN.match(parts[1]) else None
    return action, resource_type, resource_id


class PhiAuditor:
    def __init__(self, trail: AuditTrail) -> None:
        self.trail = trail
        #: The policies (one a request) whose request wrote a record, by ``id``; weak, so a
        #: finished request's entry goes with its policy.
        self._audited: weakref.WeakValueDictionary[int, AccessPolicy] = (
            weakref.WeakValueDictionary()
        )

    async def record(
        self,
        ctx: FhirContext,
        action: str,
        *,
        resource_type: str | None = None,
        resource_id: str | None = None,
        patients: Iterable[str | None] = (),
        outcome: str = "success",
        **details: Any,
    ) -> None:
        """Write one record (``fhir.read``, ``fhir.search`` ...) and wait until it is durable."""
        await self.trail.record(
            self._of(ctx, action, resource_type, resource_id, patients, outcome, details)
        )

    async def record_many(
        self,
        ctx: FhirContext,
        action: str,
        resources: Iterable[tuple[str, str, str | None]],
        **details: Any,
    ) -> None:
        """One ``action`` record for each ``(resource_type, resource_id, patient)`` of
        ``resources`` (what :meth:`record` writes for each, in that order), queued together;
        returns once every one is durable."""
        await self.trail.record_each(
            self._of(ctx, action, None, None, (), "success", details),
            [
                (kind, resource_id, [patient] if patient else [])
                for kind, resource_id, patient in resources
            ],
        )

    def template(self, ctx: FhirContext, action: str, **details: Any) -> AuditRecord:
        """The ``success`` record of ``action`` by ``ctx``'s caller, but its subject: what
        :meth:`record_many` writes for each resource, for a process that writes them itself."""
        return self._of(ctx, action, None, None, (), "success", details)

    def _of(
        self,
        ctx: FhirContext,
        action: str,
        resource_type: str | None,
        resource_id: str | None,
        patients: Iterable[str | None],
        outcome: str,
        details: dict[str, Any],
    ) -> AuditRecord:
        """The record of ``action`` by ``ctx``'s caller (a break-glass access says so)."""
        if ctx.policy.break_glass_used:
            details["break_glass"] = True
        self._audited[id(ctx.policy)] = ctx.policy
        return AuditRecord.for_origin(
            ctx.origin,
            action,
            outcome=outcome,
            patient_ids=sorted({p for p in patients if p}),
            resource_type=resource_type,
            resource_id=resource_id,
            purpose=ctx.policy.break_glass_reason if ctx.policy.break_glass_used else None,
            details=details,
        )

    async def record_failure(self, request: Request, error: MedmeshError, issue: str) -> None:
        """One ``failure`` record for an authenticated FHIR request whose operation wrote none
        (a read answering 404/410, a create refused with 400 ...): the attempted action, the
        resource type and id of the URL, the status and the OperationOutcome's issue code
        (``issue``); never the message or the body.

        Requests refused before authentication (401) have no caller to record; a failed audit
        write (503) is not recorded again.
        """
        policies: list[AccessPolicy] = request.scope.get(_POLICIES) or []
        if not policies or isinstance(error, AuditWriteFailed):
            return
        if any(self._audited.get(id(policy)) is policy for policy in policies):
            return
        policy = policies[-1]
        action, resource_type, resource_id = _action(request.method, request.url.path)
        patients = [resource_id] if resource_type == "Patient" and resource_id else []
        details: dict[str, Any] = {"status": error.status, "issue": issue}
        if policy.break_glass_used:
            details["break_glass"] = True
        try:
            await self.trail.record(
                self._request_record(
                    request,
                    policy.principal,
                    action,
                    outcome="failure",
                    resource_type=resource_type,
                    resource_id=resource_id,
                    patient_ids=patients,
                    purpose=policy.break_glass_reason if policy.break_glass_used else None,
                    details=details,
                )
            )
        except AuditWriteFailed:
            # The answer is an error that carries no PHI: it is sent; the failure is counted.
            log.warning("audit_failure_record_lost", status=error.status, issue=issue)

    async def record_capabilities(self, request: Request) -> None:
        """The record of a ``GET /fhir/metadata`` (public: the caller when a valid token came)."""
        principal: Principal | None = None
        if request.headers.get("authorization"):
            try:
                principal = await get_principal(request)
            except MedmeshError:
                principal = None  # public: a bad token does not refuse the statement
        await self.trail.record(
            self._request_record(
                request,
                principal,
                "fhir.capabilities",
                outcome="success",
                resource_type="CapabilityStatement",
            )
        )

    @staticmethod
    def _request_record(
        request: Request,
        principal: Principal | None,
        action: str,
        *,
        outcome: str,
        resource_type: str | None = None,
        resource_id: str | None = None,
        patient_ids: list[str] | None = None,
        purpose: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> AuditRecord:
        return AuditRecord.for_origin(
            RequestOrigin.of(request, principal),
            action,
            outcome=outcome,
            patient_ids=patient_ids or [],
            resource_type=resource_type,
            resource_id=resource_id,
            purpose=purpose,
            details=details,
        )
