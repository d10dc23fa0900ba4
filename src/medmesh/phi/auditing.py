"""Every PHI access is audited before the answer leaves: who, what, which patients, outcome, purpose."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from medmesh.phi.context import FhirContext
from medmesh.platform.audit import AuditRecord, AuditTrail


class PhiAuditor:
    def __init__(self, trail: AuditTrail) -> None:
        self.trail = trail

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
        principal = ctx.principal
        if ctx.policy.break_glass_used:
            details["break_glass"] = True
        await self.trail.record(
            AuditRecord(
                action=action,
                outcome=outcome,
                actor=principal.sub,
                client_id=principal.client_id,
                roles=sorted(principal.roles),
                patient_ids=sorted({p for p in patients if p}),
                resource_type=resource_type,
                resource_id=resource_id,
                source_ip=ctx.ip,
                purpose=ctx.policy.break_glass_reason if ctx.policy.break_glass_used else None,
                request_id=ctx.request_id,
                details=details,
            )
        )
