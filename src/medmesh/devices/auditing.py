"""Audit records of the service: registry changes, assignments (which name the patient) and
ingest (counts only)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from medmesh.platform.audit import AuditRecord, AuditTrail
from medmesh.platform.origin import RequestOrigin

DEVICE = "Device"


class DevicesAuditor:
    def __init__(self, trail: AuditTrail) -> None:
        self.trail = trail

    async def record(
        self,
        caller: RequestOrigin,
        action: str,
        *,
        device_id: str | None = None,
        patient_refs: Sequence[str] = (),
        actor: str | None = None,
        **details: Any,
    ) -> None:
        """Write one record (``devices.device.create`` ...) and wait until it is durable.

        Details hold ids, statuses and counts, never reading values."""
        await self.trail.record(
            AuditRecord.for_origin(
                caller,
                action,
                actor=actor,
                patient_ids=[ref.removeprefix("Patient/") for ref in patient_refs],
                resource_type=DEVICE if device_id else None,
                resource_id=device_id,
                details=details,
            )
        )
