"""Readings on SQLite, stored as chunks (see docs/decisions/0045-devices-sqlite-readings-in-chunks.md).

A batch's new readings of one device, patient, metric, unit and UTC day are one row of
``reading_chunks`` whose ``readings`` is the JSON array of their ``[reading_id, ts, value,
components]`` (``ts`` in the text :class:`~medmesh.platform.db.UTCDateTime` stores, which sorts
as time does); each reading's key is one row of ``reading_chunk_keys`` naming its chunk. A
reading costs one B-tree entry (its key) and its share of one row; the chunk's two indexes,
(device, first_ts) and (patient, first_ts), are entries per chunk. ``readings`` is a view of one
row per reading (migration 0005), the plain reading of the same data.

Since a chunk holds one day, a chunk with a reading at or after a moment has ``first_ts`` no
earlier than that moment's day: a window's chunks are a range scan of an index between the day
of its start and its end.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import (
    ColumnElement,
    Float,
    Subquery,
    and_,
    delete,
    func,
    insert,
    or_,
    select,
    tuple_,
    type_coerce,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.devices.models import ChunkKeyRow, ReadingChunkRow
from medmesh.devices.readings.window import Window
from medmesh.platform.db.fast import InsertNew
from medmesh.platform.db.types import sqlite_datetime_text

#: A batch's new keys (see :class:`InsertNew`): (device id, reading id, chunk id).
NEW_KEYS = InsertNew(
    ChunkKeyRow.__table__,  # type: ignore[arg-type]
    ("device_id", "reading_id", "chunk_id"),
    ["device_id", "reading_id"],
)
#: Chunks read at a time while a page of readings is gathered.
CHUNKS_AT_ONCE = 64
#: Keys or chunks named in one statement.
IN_AT_ONCE = 500

_fromisoformat = datetime.fromisoformat


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


def _moment(text: str) -> datetime:
    return _fromisoformat(text).replace(tzinfo=UTC)


def day_start(moment: datetime) -> datetime:
    """The start of ``moment``'s UTC day."""
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


async def store(session: AsyncSession, rows: Sequence[tuple[Any, ...]]) -> set[tuple[str, str]]:
    """Store the new of ``rows`` (tuples in ``ingest.repository.READING_COLUMNS`` order, no two
    with the same device and reading id) as chunks; the (device, reading id) of those stored."""
    if not rows:
        return set()
    groups: dict[tuple[Any, ...], list[tuple[str, tuple[Any, ...]]]] = {}
    for row in rows:
        text = sqlite_datetime_text(row[2])
        group = (row[0], row[7], row[3], row[6], row[8], text[:10])
        members = groups.get(group)
        if members is None:
            members = groups[group] = []
        members.append((text, row))
    last = await session.scalar(select(func.max(ReadingChunkRow.id)))
    ids = range((last or 0) + 1, (last or 0) + 1 + len(groups))
    keys = [
        (row[0], row[1], chunk_id)
        for chunk_id, members in zip(ids, groups.values(), strict=True)
        for _, row in members
    ]
    inserted = set(await NEW_KEYS.run(session, keys))
    chunks = []
    for chunk_id, (group, members) in zip(ids, groups.items(), strict=True):
        new = [m for m in members if (m[1][0], m[1][1]) in inserted]
        if not new:
            continue
        new.sort(key=lambda member: member[0])
        chunks.append(
            {
                "id": chunk_id,
                "device_id": group[0],
                "patient_ref": group[1],
                "metric": group[2],
                "unit": group[3],
                "received": group[4],
                "first_ts": new[0][1][2],
                "last_ts": new[-1][1][2],
                "count": len(new),
                "readings": orjson.dumps([[r[1], text, r[4], r[5]] for text, r in new]).decode(),
            }
        )
    if chunks:
        await session.execute(insert(ReadingChunkRow), chunks)
    return inserted


def _readings(
    chunk: Any,
) -> list[tuple[str, str, float, dict[str, float] | None]]:
    readings: list[tuple[str, str, float, dict[str, float] | None]] = orjson.loads(chunk.readings)
    return readings


def _stored(chunk: Any, reading: Sequence[Any]) -> StoredReading:
    return StoredReading(
        chunk.device_id,
        reading[0],
        _moment(reading[1]),
        chunk.metric,
        reading[2],
        reading[3],
        chunk.unit,
        chunk.patient_ref,
        chunk.received,
    )


def chunk_where(window: Window, lower: datetime) -> list[ColumnElement[bool]]:
    """The chunks that may hold readings of ``window`` at or after ``lower``."""
    c = ReadingChunkRow
    clauses = [
        c.first_ts >= day_start(lower),
        c.first_ts < window.end,
        c.last_ts >= lower,
    ]
    if window.device_id is not None:
        clauses.append(c.device_id == window.device_id)
    if window.patient_ref is not None:
        clauses.append(c.patient_ref == window.patient_ref)
    if window.bound_patient is not None:
        clauses.append(c.patient_ref == window.bound_patient)
    if window.metric is not None:
        clauses.append(c.metric == window.metric)
    return clauses


_CHUNK = (
    ReadingChunkRow.id,
    ReadingChunkRow.device_id,
    ReadingChunkRow.patient_ref,
    ReadingChunkRow.metric,
    ReadingChunkRow.unit,
    ReadingChunkRow.first_ts,
    ReadingChunkRow.received,
    ReadingChunkRow.readings,
)


async def raw(
    session: AsyncSession, window: Window, after: tuple[datetime, str, str] | None, limit: int
) -> list[StoredReading]:
    """A page of the window's readings, oldest first, after the (ts, device, reading id) key
    ``after``: the chunks in ``first_ts`` order until the next one starts after the page's last
    reading."""
    lower = window.start if after is None or after[0] < window.start else after[0]
    low = sqlite_datetime_text(lower)
    high = sqlite_datetime_text(window.end)
    after_key = (sqlite_datetime_text(after[0]), after[1], after[2]) if after else None
    #: (ts text, device, reading id, chunk, reading) of the page so far, at most ``limit``.
    page: list[tuple[str, str, str, Any, Sequence[Any]]] = []
    position: tuple[datetime, int] | None = None
    while True:
        stmt = select(*_CHUNK).where(*chunk_where(window, lower))
        if position is not None:
            first, chunk_id = position
            stmt = stmt.where(
                or_(
                    ReadingChunkRow.first_ts > first,
                    and_(ReadingChunkRow.first_ts == first, ReadingChunkRow.id > chunk_id),
                )
            )
        stmt = stmt.order_by(ReadingChunkRow.first_ts, ReadingChunkRow.id).limit(CHUNKS_AT_ONCE)
        chunks = (await session.execute(stmt)).all()
        for chunk in chunks:
            if len(page) >= limit and sqlite_datetime_text(chunk.first_ts) > page[-1][0]:
                return [_stored(entry[3], entry[4]) for entry in page]
            for reading in _readings(chunk):
                ts = reading[1]
                if ts < low or ts >= high:
                    continue
                key = (ts, chunk.device_id, reading[0])
                if after_key is not None and key <= after_key:
                    continue
                page.append((*key, chunk, reading))
            if len(page) > limit:
                page = heapq.nsmallest(limit, page, key=lambda entry: entry[:3])
            else:
                page.sort(key=lambda entry: entry[:3])
        if len(chunks) < CHUNKS_AT_ONCE:
            return [_stored(entry[3], entry[4]) for entry in page]
        position = (chunks[-1].first_ts, chunks[-1].id)


def rows_statement(window: Window) -> Subquery:
    """The window's chunks as one row per reading (``ts`` as stored text, ``value``), through
    ``json_each``: what aggregates read."""
    each = func.json_each(ReadingChunkRow.readings).table_valued("value", joins_implicitly=True)
    return (
        select(
            each.c.value.op("->>")(1).label("ts"),
            type_coerce(each.c.value.op("->>")(2), Float).label("value"),
        )
        .where(*chunk_where(window, window.start))
        .subquery()
    )


async def stored(
    session: AsyncSession, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], StoredReading]:
    """The stored readings of these (device id, reading id) keys."""
    chunk_of: dict[tuple[str, str], int] = {}
    for start in range(0, len(keys), IN_AT_ONCE):
        part = keys[start : start + IN_AT_ONCE]
        keys_of = select(ChunkKeyRow.device_id, ChunkKeyRow.reading_id, ChunkKeyRow.chunk_id).where(
            tuple_(ChunkKeyRow.device_id, ChunkKeyRow.reading_id).in_(part)
        )
        for device_id, reading_id, chunk_id in await session.execute(keys_of):
            chunk_of[device_id, reading_id] = chunk_id
    ids = sorted(set(chunk_of.values()))
    found: dict[tuple[str, str], StoredReading] = {}
    for start in range(0, len(ids), IN_AT_ONCE):
        stmt = select(*_CHUNK).where(ReadingChunkRow.id.in_(ids[start : start + IN_AT_ONCE]))
        for chunk in await session.execute(stmt):
            for reading in _readings(chunk):
                key = (chunk.device_id, reading[0])
                if chunk_of.get(key) == chunk.id:
                    found[key] = _stored(chunk, reading)
    return found


async def expire(session: AsyncSession, device_id: str, horizon: datetime, limit: int) -> int:
    """Remove ``device_id``'s readings taken before ``horizon``, and their keys, chunk by chunk
    (a chunk partly older keeps the rest) until at least ``limit`` are removed or none is left;
    how many."""
    cut = sqlite_datetime_text(horizon)
    removed = 0
    while removed < limit:
        stmt = (
            select(ReadingChunkRow.id, ReadingChunkRow.readings)
            .where(ReadingChunkRow.device_id == device_id, ReadingChunkRow.first_ts < horizon)
            .order_by(ReadingChunkRow.first_ts, ReadingChunkRow.id)
            .limit(CHUNKS_AT_ONCE)
        )
        chunks = (await session.execute(stmt)).all()
        if not chunks:
            break
        for chunk in chunks:
            readings = _readings(chunk)
            old = [r for r in readings if r[1] < cut]
            kept = sorted((r for r in readings if r[1] >= cut), key=lambda r: r[1])
            await session.execute(
                delete(ChunkKeyRow)
                .where(
                    ChunkKeyRow.device_id == device_id,
                    ChunkKeyRow.reading_id.in_([r[0] for r in old]),
                )
                .execution_options(synchronize_session=False)
            )
            if kept:
                await session.execute(
                    update(ReadingChunkRow)
                    .where(ReadingChunkRow.id == chunk.id)
                    .values(
                        first_ts=_moment(kept[0][1]),
                        count=len(kept),
                        readings=orjson.dumps(kept).decode(),
                    )
                    .execution_options(synchronize_session=False)
                )
            else:
                await session.execute(
                    delete(ReadingChunkRow)
                    .where(ReadingChunkRow.id == chunk.id)
                    .execution_options(synchronize_session=False)
                )
            removed += len(old)
    return removed
