"""Readings on SQLite, stored as chunks (see docs/decisions/0045-devices-sqlite-readings-in-chunks.md):
what a chunk holds and how it is read; its queries are in
:mod:`medmesh.devices.readings.chunk_repository`.

A batch's new readings of one device, patient, metric, unit and UTC hour are one row of
``reading_chunks`` whose ``readings`` is the JSON array of their ``[reading_id, ts, value,
components]`` (``ts`` in the text :class:`~medmesh.platform.db.UTCDateTime` stores, which sorts
as time does), with the count, least, greatest and sum of their values; each reading's key is
one row of ``reading_chunk_keys`` naming its chunk. A reading costs one B-tree entry (its key)
and its share of one row; the chunk's two indexes, (device, first_ts) and (patient, first_ts),
are entries per chunk. ``readings`` is a view of one row per reading (migration 0005), the plain
reading of the same data. Compaction merges the small chunks of an hour that has passed, up to
:data:`MAX_MERGED` readings a chunk.

Since a chunk holds one hour, a chunk with a reading at or after a moment has ``first_ts`` no
earlier than that moment's hour: a window's chunks are a range scan of an index between the
hour of its start and its end. An aggregate per hour (or a multiple of hours) takes a chunk
wholly inside the window from its summary, and reads only the readings of the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import ColumnElement

from medmesh.devices.models import ReadingChunkRow
from medmesh.devices.readings.window import Window

#: Most readings compaction puts in one chunk (a batch's chunk holds at most a batch's).
MAX_MERGED = 4096

_fromisoformat = datetime.fromisoformat
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(slots=True)
class StoredReading:
    """A stored reading as the queries and delivery read it, on either database."""

    device_id: str
    reading_id: str
    ts: datetime
    metric: str
    value: float
    components: dict[str, float] | None
    unit: str
    patient_ref: str | None
    received: datetime


def moment(text: str) -> datetime:
    """The moment of a reading's ``ts`` text."""
    return _fromisoformat(text).replace(tzinfo=UTC)


def hour_start(moment: datetime) -> datetime:
    """The start of ``moment``'s UTC hour."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def readings_of(chunk: Any) -> list[list[Any]]:
    """A chunk's readings: each ``[reading_id, ts, value, components]`` and, merged from a chunk
    received at another time, that time."""
    readings: list[list[Any]] = orjson.loads(chunk.readings)
    return readings


def stored_reading(chunk: Any, reading: Sequence[Any]) -> StoredReading:
    """One of ``chunk``'s readings (a row with its device, metric, unit, patient and received
    time)."""
    return StoredReading(
        chunk.device_id,
        reading[0],
        moment(reading[1]),
        chunk.metric,
        reading[2],
        reading[3],
        chunk.unit,
        chunk.patient_ref,
        # A merged chunk keeps the time each reading was received when not the chunk's.
        moment(reading[4]) if len(reading) > 4 else chunk.received,
    )


def summary(readings: Sequence[Sequence[Any]]) -> dict[str, Any]:
    """The columns of a chunk that holds ``readings`` (in time order) besides its key and
    first time."""
    values = [r[2] for r in readings]
    return {
        "last_ts": moment(readings[-1][1]),
        "count": len(readings),
        "value_min": min(values),
        "value_max": max(values),
        "value_sum": sum(values),
        "readings": orjson.dumps(readings).decode(),
    }


def chunk_where(window: Window, lower: datetime) -> list[ColumnElement[bool]]:
    """The chunks that may hold readings of ``window`` at or after ``lower``."""
    c = ReadingChunkRow
    return [
        c.first_ts >= hour_start(lower),
        c.first_ts < window.end,
        c.last_ts >= lower,
        *window.owners(c.device_id, c.patient_ref, c.metric),
    ]
