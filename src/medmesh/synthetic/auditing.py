"""Audit records of the service: who asked for which run, cancelled it or downloaded its output."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from medmesh.platform.audit import AuditRecord, AuditTrail
from medmesh.platform.tokens import Principal

#: The audited object: a generation job (synchronous runs have no id).
JOB = "SyntheticJob"


@dataclass(frozen=True)
class Caller:
    """Who is asking and from where (the request's part of an audit record)."""

    principal: Principal
    ip: str | None
    request_id: str | None


class SyntheticAuditor:
    def __init__(self, trail: AuditTrail) -> None:
        self.trail = trail

    async def record(
        self,
        caller: Caller,
        action: str,
        *,
        job_id: str | None = None,
        outcome: str = "success",
        **details: Any,
    ) -> None:
        """Write one record (``synthetic.job.create`` ...) and wait until it is durable.

        The data is synthetic, so no patient ids are recorded; details hold sizes, seeds and
        file names only.
        """
        principal = caller.principal
        await self.trail.record(
            AuditRecord(
                action=action,
                outcome=outcome,
                actor=principal.sub,
                client_id=principal.client_id,
                roles=sorted(principal.roles),
                resource_type=JOB if job_id else None,
                resource_id=job_id,
                source_ip=caller.ip,
                request_id=caller.request_id,
                details=details,
            )
        )
