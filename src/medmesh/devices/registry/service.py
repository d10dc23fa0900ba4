"""The device registry: devices, their keys (shown once, stored hashed) and their assignments
to patients."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.devices.auditing import DevicesAuditor
from medmesh.devices.delivery.messages import enqueue_device
from medmesh.devices.errors import (
    AssignmentConflict,
    AssignmentNotFound,
    DeviceNotFound,
    DeviceRetired,
    KeyNotFound,
)
from medmesh.devices.models import AssignmentRow, DeviceKeyRow, DeviceRow
from medmesh.devices.patients import canonical_patient_ref
from medmesh.devices.registry.credentials import key_hash, new_device_key
from medmesh.devices.registry.repository import DeviceRepository
from medmesh.devices.registry.schemas import (
    AssignmentCreate,
    DeviceCreate,
    DeviceFields,
    DeviceUpdate,
)
from medmesh.platform.db import utcnow
from medmesh.platform.errors import BadRequest
from medmesh.platform.ids import uuid7_hex
from medmesh.platform.origin import RequestOrigin
from medmesh.platform.paging import Keyset

DEVICE_PREFIX, KEY_PREFIX, ASSIGNMENT_PREFIX = "dev_", "dk_", "asg_"


def _apply(row: DeviceRow, fields: DeviceFields, present: set[str]) -> None:
    for name in ("udi", "manufacturer", "model", "serial_number", "firmware_version"):
        if name in present:
            setattr(row, name, getattr(fields, name))
    if "type" in present:
        row.type_code = fields.type.code if fields.type else None
        row.type_display = fields.type.display if fields.type else None


class RegistryService:
    """``fhir_base``: phi-service's FHIR base, where each device is written as a FHIR Device."""

    def __init__(self, auditor: DevicesAuditor, fhir_base: str) -> None:
        self.auditor = auditor
        self.fhir_base = fhir_base

    async def create(
        self, session: AsyncSession, caller: RequestOrigin, body: DeviceCreate
    ) -> tuple[DeviceRow, DeviceKeyRow, str]:
        """Register a device with its first key; the key itself is returned this once."""
        now = utcnow()
        row = DeviceRow(
            id=DEVICE_PREFIX + uuid7_hex(), status=body.status, created=now, updated=now
        )
        _apply(row, body, set(DeviceFields.model_fields))
        key, secret = self._new_key(row.id, now)
        await DeviceRepository(session).add(row, key)
        await enqueue_device(session, row, self.fhir_base)
        await self.auditor.record(caller, "devices.device.create", device_id=row.id, key_id=key.id)
        return row, key, secret

    async def get(self, session: AsyncSession, device_id: str) -> DeviceRow:
        row = await DeviceRepository(session).get(device_id)
        if row is None:
            raise DeviceNotFound(device_id)
        return row

    async def page(
        self, session: AsyncSession, page: Keyset, status: str | None
    ) -> Sequence[DeviceRow]:
        return await DeviceRepository(session).page(page, status)

    async def update(
        self, session: AsyncSession, caller: RequestOrigin, device_id: str, body: DeviceUpdate
    ) -> DeviceRow:
        row = await self.get(session, device_id)
        present = set(body.model_fields_set)
        if row.status == "retired" and body.status not in (None, "retired"):
            raise DeviceRetired("a retired device stays retired")
        _apply(row, body, present)
        if body.status is not None:
            row.status = body.status
        row.updated = utcnow()
        await session.flush()
        await enqueue_device(session, row, self.fhir_base)
        await self.auditor.record(
            caller, "devices.device.update", device_id=row.id, fields=sorted(present)
        )
        return row

    # --- keys ----------------------------------------------------------------------------

    @staticmethod
    def _new_key(device_id: str, now: datetime) -> tuple[DeviceKeyRow, str]:
        secret = new_device_key()
        row = DeviceKeyRow(
            id=KEY_PREFIX + uuid7_hex(), device_id=device_id, key_hash=key_hash(secret), created=now
        )
        return row, secret

    async def add_key(
        self, session: AsyncSession, caller: RequestOrigin, device_id: str
    ) -> tuple[DeviceKeyRow, str]:
        """A new key for the device (rotation: the old ones work until revoked)."""
        device = await self.get(session, device_id)
        if device.status == "retired":
            raise DeviceRetired("a retired device gets no new keys")
        row, secret = self._new_key(device_id, utcnow())
        await DeviceRepository(session).add(row)
        await self.auditor.record(caller, "devices.key.create", device_id=device_id, key_id=row.id)
        return row, secret

    async def keys(self, session: AsyncSession, device_id: str) -> Sequence[DeviceKeyRow]:
        await self.get(session, device_id)
        return await DeviceRepository(session).keys(device_id)

    async def revoke_key(
        self, session: AsyncSession, caller: RequestOrigin, device_id: str, key_id: str
    ) -> DeviceKeyRow:
        row = await DeviceRepository(session).key(device_id, key_id)
        if row is None:
            raise KeyNotFound(key_id)
        if row.revoked is None:
            row.revoked = utcnow()
            await session.flush()
            await self.auditor.record(
                caller, "devices.key.revoke", device_id=device_id, key_id=key_id
            )
        return row

    async def device_of_key(self, session: AsyncSession, key: str) -> str | None:
        """The device a live key belongs to; None for an unknown or revoked key."""
        return await DeviceRepository(session).device_of_key(key_hash(key))

    # --- assignments -----------------------------------------------------------------------

    async def assign(
        self, session: AsyncSession, caller: RequestOrigin, device_id: str, body: AssignmentCreate
    ) -> AssignmentRow:
        """Assign the device to a patient over [start, end); it may not overlap another
        assignment of the device (end that one first)."""
        device = await self.get(session, device_id)
        if device.status == "retired":
            raise DeviceRetired("a retired device cannot be assigned")
        patient = canonical_patient_ref(body.patient)
        if patient is None:
            raise BadRequest(
                "patient: not a Patient reference (Patient/<id>)", code="invalid_patient"
            )
        now = utcnow()
        start = body.start or now
        if body.end is not None and body.end <= start:
            raise AssignmentConflict("the assignment ends before it starts")
        repository = DeviceRepository(session)
        other = await repository.overlapping(device_id, start, body.end)
        if other is not None:
            raise AssignmentConflict(
                f"the device is assigned over that time already (assignment {other.id}); "
                "end that assignment first"
            )
        row = AssignmentRow(
            id=ASSIGNMENT_PREFIX + uuid7_hex(),
            device_id=device_id,
            patient_ref=patient,
            start=start,
            end=body.end,
            created=now,
        )
        await repository.add(row)
        await self.auditor.record(
            caller,
            "devices.assignment.create",
            device_id=device_id,
            patient_refs=[patient],
            assignment_id=row.id,
        )
        return row

    async def assignments(self, session: AsyncSession, device_id: str) -> Sequence[AssignmentRow]:
        await self.get(session, device_id)
        return await DeviceRepository(session).assignments(device_id)

    async def open_assignments(
        self, session: AsyncSession, device_ids: Sequence[str]
    ) -> dict[str, AssignmentRow]:
        """Each device's open assignment, by device id (devices without one are absent)."""
        return await DeviceRepository(session).open_assignments(device_ids)

    async def end_assignment(
        self,
        session: AsyncSession,
        caller: RequestOrigin,
        device_id: str,
        assignment_id: str,
        end: datetime | None,
    ) -> AssignmentRow:
        repository = DeviceRepository(session)
        row = await repository.assignment(device_id, assignment_id)
        if row is None:
            raise AssignmentNotFound(assignment_id)
        if row.end is not None:
            raise AssignmentConflict("the assignment has ended already")
        end = end or utcnow()
        if end <= row.start:
            raise AssignmentConflict("the assignment would end before it starts")
        row.end = end
        await session.flush()
        await self.auditor.record(
            caller,
            "devices.assignment.end",
            device_id=device_id,
            patient_refs=[row.patient_ref],
            assignment_id=row.id,
        )
        return row
