"""Audit records of the service: who asked for which run, cancelled it or downloaded its output."""

from __future__ import annotations

from typing import Any

from medmesh.platform.audit import AuditRecord, AuditTrail
from medmesh.platform.origin import RequestOrigin

#: The audited object: a generation job (synchronous runs have no id).
JOB = "SyntheticJob"


class SyntheticAuditor:
    def __init__(self, trail: AuditTrail) -> None:
        self.trail = trail

    async def record(
        self,
        caller: RequestOrigin,
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
        await self.trail.record(
            AuditRecord.for_origin(
                caller,
                action,
                outcome=outcome,
                resource_type=JOB if job_id else None,
                resource_id=job_id,
                details=details,
            )
        )
