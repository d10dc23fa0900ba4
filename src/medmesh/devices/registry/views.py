"""Rows as the API shows them."""

from __future__ import annotations

from medmesh.devices.models import AssignmentRow, DeviceKeyRow, DeviceRow
from medmesh.devices.registry.schemas import (
    AssignmentView,
    DeviceCreated,
    DeviceType,
    DeviceView,
    KeyView,
    NewKey,
)


def assignment_view(row: AssignmentRow) -> AssignmentView:
    return AssignmentView(
        id=row.id, device_id=row.device_id, patient=row.patient_ref, start=row.start, end=row.end
    )


def device_view(row: DeviceRow, assignment: AssignmentRow | None) -> DeviceView:
    kind = DeviceType(code=row.type_code, display=row.type_display) if row.type_code else None
    return DeviceView(
        id=row.id,
        udi=row.udi,
        manufacturer=row.manufacturer,
        model=row.model,
        serial_number=row.serial_number,
        type=kind,
        firmware_version=row.firmware_version,
        status=row.status,
        created=row.created,
        updated=row.updated,
        last_seen=row.last_seen,
        assignment=assignment_view(assignment) if assignment else None,
    )


def key_view(row: DeviceKeyRow) -> KeyView:
    return KeyView(id=row.id, created=row.created, revoked=row.revoked)


def new_key_view(row: DeviceKeyRow, secret: str) -> NewKey:
    return NewKey(id=row.id, created=row.created, revoked=row.revoked, key=secret)


def created_view(row: DeviceRow, key: DeviceKeyRow, secret: str) -> DeviceCreated:
    return DeviceCreated(
        **device_view(row, None).model_dump(), credential=new_key_view(key, secret)
    )
