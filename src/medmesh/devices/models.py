"""medical-device service tables.

Readings are keyed by (device, device-assigned reading id), so a repeated reading is the same
row; the (device, time) and (patient, time) indexes make a window of one device's or one
patient's readings a range scan. On PostgreSQL ``readings`` is partitioned by month of ``ts``
(:mod:`medmesh.devices.partitions`) and the key is kept unique in ``reading_keys``
(:class:`ReadingKeyRow`). SQLite keeps readings in chunks (:class:`ReadingChunkRow`: one row per
device, patient, metric and UTC day of a batch) with their keys in ``reading_chunk_keys``
(:class:`ChunkKeyRow`), and ``readings`` is a view of one row per reading over them
(:mod:`medmesh.devices.readings.chunks`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, Index, Integer, String, Text
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
    """One stored reading, in its metric's canonical UCUM unit.

    On SQLite ``readings`` is a view over the chunks (migration 0005): it reads as this table
    and is written through :mod:`medmesh.devices.readings.chunks`.

    On PostgreSQL the table is partitioned by month of ``ts`` (migration 0003): its primary key
    there is (device_id, reading_id, ts), since a partitioned table's unique keys must hold the
    partition key, and ``reading_keys`` keeps (device_id, reading_id) unique.
    """

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


class AlertRuleRow(DevicesBase):
    """A threshold rule (``kind`` threshold: metric, comparison, threshold, held ``for_seconds``
    or ``in_a_row`` readings) or an offline rule (no reading for ``offline_seconds``), for one
    patient, one device, or every device (both null)."""

    __tablename__ = "alert_rules"

    id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))
    metric: Mapped[str | None] = mapped_column(String(32), nullable=True)
    component: Mapped[str | None] = mapped_column(String(32), nullable=True)
    comparison: Mapped[str | None] = mapped_column(String(2), nullable=True)
    threshold: Mapped[float | None] = mapped_column(Float, nullable=True)
    for_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    in_a_row: Mapped[int | None] = mapped_column(Integer, nullable=True)
    offline_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    severity: Mapped[str] = mapped_column(String(16))
    patient_ref: Mapped[str | None] = mapped_column(String(PATIENT_REF), nullable=True)
    device_id: Mapped[str | None] = mapped_column(String(ID), nullable=True)
    enabled: Mapped[bool] = mapped_column(Boolean)
    created: Mapped[datetime] = mapped_column(UTCDateTime)


class AlertStateRow(DevicesBase):
    """Where a threshold rule stands for one device: since when (and for how many readings in a
    row) its condition has held, and the latest reading time evaluated."""

    __tablename__ = "alert_states"

    rule_id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    device_id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    breach_since: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    breach_count: Mapped[int] = mapped_column(Integer, default=0)
    last_ts: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class AlertRow(DevicesBase):
    """An alert: ``open``, then ``acknowledged`` (someone is on it), then ``resolved``."""

    __tablename__ = "alerts"
    __table_args__ = (
        Index("ix_alerts_rule_device", "rule_id", "device_id", "status"),
        Index("ix_alerts_status", "status", "id"),
        Index("ix_alerts_patient", "patient_ref", "id"),
    )

    id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    rule_id: Mapped[str] = mapped_column(String(ID))
    kind: Mapped[str] = mapped_column(String(16))
    severity: Mapped[str] = mapped_column(String(16))
    device_id: Mapped[str] = mapped_column(String(ID))
    patient_ref: Mapped[str | None] = mapped_column(String(PATIENT_REF), nullable=True)
    metric: Mapped[str | None] = mapped_column(String(32), nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    #: The reading time the condition was met at (offline: when it was found silent).
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    acknowledged_by: Mapped[str | None] = mapped_column(String(256), nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class PostgresOnlyBase(DeclarativeBase):
    """Tables only PostgreSQL has (migration 0003 makes them; SQLite has no partitions)."""

    metadata = new_metadata()


class ReadingKeyRow(PostgresOnlyBase):
    """The key of every stored reading, outside the monthly partitions of ``readings``: a
    reading is new when its key is. ``ts`` is the stored reading's time, which names the
    partition that holds it."""

    __tablename__ = "reading_keys"
    __table_args__ = (Index("ix_reading_keys_ts", "ts"),)

    device_id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    reading_id: Mapped[str] = mapped_column(String(READING_ID), primary_key=True)
    ts: Mapped[datetime] = mapped_column(UTCDateTime)


class SqliteOnlyBase(DeclarativeBase):
    """Tables only SQLite has (migration 0005 makes them: its readings are chunks)."""

    metadata = new_metadata()


class ReadingChunkRow(SqliteOnlyBase):
    """Readings of one device, patient, metric, unit and UTC hour stored by one batch (or
    merged by compaction), as one row: ``readings`` is the JSON array of their ``[reading_id,
    ts, value, components]`` (``ts`` in the text :class:`UTCDateTime` stores). ``first_ts`` and
    ``last_ts`` bound them, and ``count``, ``value_min``, ``value_max`` and ``value_sum``
    summarise their values, so a chunk wholly inside a window answers an hourly (or longer)
    aggregate without being read. Since a chunk holds one hour, a chunk with readings at or
    after a moment starts no earlier than that moment's hour, which bounds a window's range scan
    of the indexes."""

    __tablename__ = "reading_chunks"
    __table_args__ = (
        Index("ix_reading_chunks_device_time", "device_id", "first_ts"),
        Index("ix_reading_chunks_patient_time", "patient_ref", "first_ts"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    device_id: Mapped[str] = mapped_column(String(ID))
    patient_ref: Mapped[str | None] = mapped_column(String(PATIENT_REF), nullable=True)
    metric: Mapped[str] = mapped_column(String(32))
    unit: Mapped[str] = mapped_column(String(32))
    first_ts: Mapped[datetime] = mapped_column(UTCDateTime)
    last_ts: Mapped[datetime] = mapped_column(UTCDateTime)
    received: Mapped[datetime] = mapped_column(UTCDateTime)
    count: Mapped[int] = mapped_column(Integer)
    value_min: Mapped[float] = mapped_column(Float)
    value_max: Mapped[float] = mapped_column(Float)
    value_sum: Mapped[float] = mapped_column(Float)
    readings: Mapped[str] = mapped_column(Text)


class ChunkSequenceRow(SqliteOnlyBase):
    """The last id given to a chunk (one row): ids only grow, also past chunks merged away or
    removed, so compaction finds every chunk stored since it last looked by its id."""

    __tablename__ = "reading_chunk_sequence"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last: Mapped[int] = mapped_column(Integer)


class ChunkKeyRow(SqliteOnlyBase):
    """The key of every reading stored on SQLite and the chunk that holds it: a reading is new
    when its key is. One B-tree entry a reading (``WITHOUT ROWID``, no other index): a chunk's
    keys are found from its readings."""

    __tablename__ = "reading_chunk_keys"
    __table_args__ = {"sqlite_with_rowid": False}

    device_id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    reading_id: Mapped[str] = mapped_column(String(READING_ID), primary_key=True)
    chunk_id: Mapped[int] = mapped_column(Integer)
