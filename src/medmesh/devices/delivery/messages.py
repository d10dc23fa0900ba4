"""Observations queued for phi-service: one outbox message per Bundle, written in the
transaction that stores the readings, so a stored reading is always on its way. A message names
its readings by key (device id, reading id); the delivery reads them from the readings table
when it sends the Bundle, so the outbox holds no second copy of the values."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.devices.ingest.validation import Reading
from medmesh.devices.models import DeviceRow
from medmesh.devices.readings.chunks import StoredReading
from medmesh.platform.outbox import enqueue

TOPIC = "devices.observations"
DEVICE_TOPIC = "devices.device"


def device_fields(row: DeviceRow) -> dict[str, Any]:
    """What phi-service's FHIR Device of a device is made from."""
    return {
        "device_id": row.id,
        "status": row.status,
        "udi": row.udi,
        "manufacturer": row.manufacturer,
        "model": row.model,
        "serial_number": row.serial_number,
        "type_code": row.type_code,
        "type_display": row.type_display,
        "firmware_version": row.firmware_version,
    }


def reading_fields(reading: Reading | StoredReading, patient: str | None) -> dict[str, Any]:
    """What an Observation is made from (see ``normalization.observations``)."""
    return {
        "device_id": reading.device_id,
        "reading_id": reading.reading_id,
        "ts": reading.ts.isoformat(),
        "metric": reading.metric,
        "unit": reading.unit,
        "value": reading.value,
        "components": reading.components,
        "patient": patient,
    }


async def enqueue_device(session: AsyncSession, row: DeviceRow, fhir_base: str) -> None:
    """Queue writing the device's FHIR Device (in the transaction that changed it)."""
    await enqueue(session, topic=DEVICE_TOPIC, destination=fhir_base, payload=device_fields(row))


async def enqueue_observations(
    session: AsyncSession,
    stored: Sequence[tuple[Reading, str | None]],
    destination: str,
    max_entries: int,
) -> int:
    """Queue the assigned readings in messages of at most ``max_entries``; how many messages."""
    assigned = [
        (reading.device_id, reading.reading_id)
        for reading, patient in stored
        if patient is not None
    ]
    messages = 0
    for start in range(0, len(assigned), max_entries):
        payload = {"reading_keys": assigned[start : start + max_entries]}
        await enqueue(session, topic=TOPIC, destination=destination, payload=payload)
        messages += 1
    return messages
