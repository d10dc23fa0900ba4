"""medical-device service tables.

Readings are keyed by (device, device-assigned reading id), so a repeated reading is the same
row; the (device, time) and (patient, time) indexes make a window of one device's or one
patient's readings a range scan.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, Index, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from medmesh.platform.db import UTCDateTime, new_metadata

ID = 40
READING_ID = 128
PATIENT_REF = 80


class DevicesBase(DeclarativeBase):
    metadata = new_metadata()


class DeviceRow(DevicesBase):
    """A registered device (the fields of a FHIR Device this service keeps)."""

    __tablename__ = "devices"

    id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    udi: Mapped[str | None] = mapped_column(String(256), nullable=True)
    manufacturer: Mapped[str | None] = mapped_column(String(256), nullable=True)
    model: Mapped[str | None] = mapped_column(String(256), nullable=True)
    serial_number: Mapped[str | None] = mapped_column(String(256), nullable=True)
    #: SNOMED CT code and display of the device's kind.
    type_code: Mapped[str | None] = mapped_column(String(32), nullable=True)
    type_display: Mapped[str | None] = mapped_column(String(256), nullable=True)
    firmware_version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    created: Mapped[datetime] = mapped_column(UTCDateTime)
    updated: Mapped[datetime] = mapped_column(UTCDateTime)
    #: When the service last received a reading from the device.
    last_seen: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class DeviceKeyRow(DevicesBase):
    """A device's credential: the SHA-256 of a random key shown once; revoked keys are kept."""

    __tablename__ = "device_keys"
    __table_args__ = (Index("ix_device_keys_device", "device_id", "id"),)

    id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    device_id: Mapped[str] = mapped_column(String(ID))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class AssignmentRow(DevicesBase):
    """A device worn by a patient from ``start`` until ``end`` (open while ``end`` is null)."""

    __tablename__ = "assignments"
    __table_args__ = (
        Index("ix_assignments_device", "device_id", "start"),
        Index("ix_assignments_patient", "patient_ref", "start"),
    )

    id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    device_id: Mapped[str] = mapped_column(String(ID))
    patient_ref: Mapped[str] = mapped_column(String(PATIENT_REF))
    start: Mapped[datetime] = mapped_column(UTCDateTime)
    end: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created: Mapped[datetime] = mapped_column(UTCDateTime)


class ReadingRow(DevicesBase):
    """One stored reading, in its metric's canonical UCUM unit."""

    __tablename__ = "readings"
    __table_args__ = (
        Index("ix_readings_device_time", "device_id", "ts"),
        Index("ix_readings_patient_time", "patient_ref", "ts"),
    )

    device_id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    reading_id: Mapped[str] = mapped_column(String(READING_ID), primary_key=True)
    ts: Mapped[datetime] = mapped_column(UTCDateTime)
    metric: Mapped[str] = mapped_column(String(32))
    #: The value (a panel's first component, such as the systolic pressure).
    value: Mapped[float] = mapped_column(Float)
    #: Every component of a panel by name ({"systolic": 120, "diastolic": 80}); null otherwise.
    components: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    unit: Mapped[str] = mapped_column(String(32))
    #: ``Patient/<id>`` assigned at ``ts``; null readings are kept and not sent to phi.
    patient_ref: Mapped[str | None] = mapped_column(String(PATIENT_REF), nullable=True)
    received: Mapped[datetime] = mapped_column(UTCDateTime)
