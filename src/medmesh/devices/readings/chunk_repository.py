"""Every query of SQLite's chunks of readings (:mod:`medmesh.devices.readings.chunks`): storing
a batch, a page of a window, an aggregate, the readings of keys, retention and compaction."""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import (
    Float,
    Integer,
    Select,
    and_,
    cast,
    delete,
    func,
    insert,
    literal,
    not_,
    or_,
    select,
    tuple_,
    type_coerce,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.devices.models import ChunkKeyRow, ChunkSequenceRow, ReadingChunkRow
from medmesh.devices.readings.chunks import (
    EPOCH,
    MAX_MERGED,
    StoredReading,
    chunk_where,
    hour_start,
    moment,
    readings_of,
    stored_reading,
    summary,
)
from medmesh.devices.readings.window import Window
from medmesh.platform.db.insert_new import InsertNew
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


def _parts(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    """``items``, :data:`IN_AT_ONCE` at a time (what one statement names)."""
    for start in range(0, len(items), IN_AT_ONCE):
        yield items[start : start + IN_AT_ONCE]


async def store(session: AsyncSession, rows: Sequence[tuple[Any, ...]]) -> set[tuple[str, str]]:
    """Store the new of ``rows`` (tuples in ``ingest.repository.READING_COLUMNS`` order, no two
    with the same device and reading id) as chunks; the (device, reading id) of those stored."""
    if not rows:
        return set()
    groups: dict[tuple[Any, ...], list[tuple[str, tuple[Any, ...]]]] = {}
    for row in rows:
        text = sqlite_datetime_text(row[2])
        group = (row[0], row[7], row[3], row[6], row[8], text[:13])
        members = groups.get(group)
        if members is None:
            members = groups[group] = []
        members.append((text, row))
    sequence = ChunkSequenceRow
    last = await session.scalar(
        update(sequence)
        .where(sequence.id == 1)
        .values(last=sequence.last + len(groups))
        .returning(sequence.last)
    )
    assert last is not None, "reading_chunk_sequence has its row (migration 0005)"
    ids = range(last - len(groups) + 1, last + 1)
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
        values = [r[4] for _, r in new]
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
                "value_min": min(values),
                "value_max": max(values),
                "value_sum": sum(values),
                "readings": orjson.dumps([[r[1], text, r[4], r[5]] for text, r in new]).decode(),
            }
        )
    if chunks:
        await session.execute(insert(ReadingChunkRow), chunks)
    return inserted


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
    ``after``: the chunks in ``first_ts`` order (64 at first, then more at a time) until the
    next one starts after the page's last reading."""
    lower = window.start if after is None or after[0] < window.start else after[0]
    low = sqlite_datetime_text(lower)
    high = sqlite_datetime_text(window.end)
    after_key = (sqlite_datetime_text(after[0]), after[1], after[2]) if after else None
    #: (ts text, device, reading id, chunk, reading) that may be on the page, in no order.
    found: list[tuple[str, str, str, Any, Sequence[Any]]] = []
    #: Once ``limit`` were found, the key of the last of the page they made: nothing after it
    #: can be on the page (what is found later only moves the page's end earlier).
    bound: tuple[str, str, str] | None = None
    bound_moment: datetime | None = None
    position: tuple[datetime, int] | None = None
    at_once = CHUNKS_AT_ONCE
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
        stmt = stmt.order_by(ReadingChunkRow.first_ts, ReadingChunkRow.id).limit(at_once)
        chunks = (await session.execute(stmt)).all()
        for chunk in chunks:
            if bound_moment is not None and chunk.first_ts > bound_moment:
                return _page(found, limit)
            for reading in readings_of(chunk):
                ts = reading[1]
                if ts < low or ts >= high:
                    continue
                key = (ts, chunk.device_id, reading[0])
                if (after_key is not None and key <= after_key) or (
                    bound is not None and key > bound
                ):
                    continue
                found.append((*key, chunk, reading))
            if len(found) >= (limit if bound is None else 2 * limit):
                found = heapq.nsmallest(limit, found, key=lambda entry: entry[:3])
                bound = found[-1][:3]
                bound_moment = moment(bound[0])
        if len(chunks) < at_once:
            return _page(found, limit)
        position = (chunks[-1].first_ts, chunks[-1].id)
        at_once = min(at_once * 4, 4096)


def _page(found: list[tuple[str, str, str, Any, Sequence[Any]]], limit: int) -> list[StoredReading]:
    return [
        stored_reading(entry[3], entry[4])
        for entry in heapq.nsmallest(limit, found, key=lambda entry: entry[:3])
    ]


def aggregate_statement(
    window: Window, interval: int
) -> Select[tuple[int, int, float, float, float]]:
    """(bucket number, count, min, max, avg) of ``value`` per ``interval`` seconds over the
    window's chunks: when ``interval`` is a whole number of hours, a chunk wholly inside the
    window (and after 1970, where a bucket is the floor of its seconds) is one bucket's and
    gives its summary; the readings of the others are read one by one through ``json_each``."""
    c = ReadingChunkRow
    where = chunk_where(window, window.start)
    parts: list[Select[Any]] = []
    readings_where = where
    if interval % 3600 == 0:
        whole = and_(c.first_ts >= window.start, c.last_ts < window.end, c.first_ts >= EPOCH)
        bucket = cast(func.strftime("%s", c.first_ts), Integer) // interval
        parts.append(
            select(
                bucket.label("bucket"),
                c.count.label("n"),
                c.value_min.label("low"),
                c.value_max.label("high"),
                c.value_sum.label("total"),
            ).where(*where, whole)
        )
        readings_where = [*where, not_(whole)]
    each = func.json_each(c.readings).table_valued("value", joins_implicitly=True)
    one = (
        select(
            each.c.value.op("->>")(1).label("ts"),
            type_coerce(each.c.value.op("->>")(2), Float).label("value"),
        )
        .where(*readings_where)
        .subquery()
    )
    parts.append(
        select(
            (cast(func.strftime("%s", one.c.ts), Integer) // interval).label("bucket"),
            literal(1).label("n"),
            one.c.value.label("low"),
            one.c.value.label("high"),
            one.c.value.label("total"),
        ).where(
            one.c.ts >= sqlite_datetime_text(window.start),
            one.c.ts < sqlite_datetime_text(window.end),
        )
    )
    every = union_all(*parts).subquery()
    return (
        select(
            every.c.bucket,
            func.sum(every.c.n),
            func.min(every.c.low),
            func.max(every.c.high),
            func.sum(every.c.total) / func.sum(every.c.n),
        )
        .group_by(every.c.bucket)
        .order_by(every.c.bucket)
    )


async def stored(
    session: AsyncSession, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], StoredReading]:
    """The stored readings of these (device id, reading id) keys."""
    chunk_of: dict[tuple[str, str], int] = {}
    for part in _parts(keys):
        keys_of = select(ChunkKeyRow.device_id, ChunkKeyRow.reading_id, ChunkKeyRow.chunk_id).where(
            tuple_(ChunkKeyRow.device_id, ChunkKeyRow.reading_id).in_(part)
        )
        for device_id, reading_id, chunk_id in await session.execute(keys_of):
            chunk_of[device_id, reading_id] = chunk_id
    ids = sorted(set(chunk_of.values()))
    found: dict[tuple[str, str], StoredReading] = {}
    for part in _parts(ids):
        stmt = select(*_CHUNK).where(ReadingChunkRow.id.in_(part))
        for chunk in await session.execute(stmt):
            for reading in readings_of(chunk):
                key = (chunk.device_id, reading[0])
                if chunk_of.get(key) == chunk.id:
                    found[key] = stored_reading(chunk, reading)
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
            readings = readings_of(chunk)
            old = [r for r in readings if r[1] < cut]
            kept = sorted((r for r in readings if r[1] >= cut), key=lambda r: r[1])
            for part in _parts([r[0] for r in old]):
                await session.execute(
                    delete(ChunkKeyRow)
                    .where(ChunkKeyRow.device_id == device_id, ChunkKeyRow.reading_id.in_(part))
                    .execution_options(synchronize_session=False)
                )
            if kept:
                await session.execute(
                    update(ReadingChunkRow)
                    .where(ReadingChunkRow.id == chunk.id)
                    .values(first_ts=moment(kept[0][1]), **summary(kept))
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


@dataclass(slots=True)
class Compacted:
    """What one :func:`compact` did: chunks merged away, the last chunk id looked at (every
    chunk up to it had its hour over), and whether chunks after it may have theirs over too."""

    merged: int
    seen: int
    more: bool


async def compact(session: AsyncSession, seen: int, now: datetime, groups: int) -> Compacted:
    """Merge the chunks of one device, patient, metric, unit and UTC hour over before ``now``
    (in id order, as many as fit in :data:`MAX_MERGED` readings, into the first's id, which each
    reading's key names), for up to ``groups`` hours among the chunks stored after chunk
    ``seen``. An hour looked at stays looked at: a reading of it stored later is a new chunk,
    after ``seen``, merged by a later run."""
    c = ReadingChunkRow
    hour = hour_start(now)
    limit = groups * 8
    candidates = (
        await session.execute(
            select(c.id, c.device_id, c.patient_ref, c.metric, c.unit, c.first_ts)
            .where(c.id > seen)
            .order_by(c.id)
            .limit(limit)
        )
    ).all()
    passed: dict[tuple[Any, ...], None] = {}
    more = len(candidates) == limit
    for chunk in candidates:
        start = hour_start(chunk.first_ts)
        if start >= hour:
            more = False  # this one's hour is not over: the next run starts here
            break
        group = (chunk.device_id, chunk.patient_ref, chunk.metric, chunk.unit, start)
        if group not in passed and len(passed) == groups:
            more = True
            break
        passed[group] = None
        seen = chunk.id
    merged = 0
    for device_id, patient_ref, metric, unit, start in passed:
        members = (
            await session.execute(
                select(c.id, c.count, c.received, c.readings)
                .where(
                    c.device_id == device_id,
                    c.first_ts >= start,
                    c.first_ts < start + timedelta(hours=1),
                    c.patient_ref.is_(None)
                    if patient_ref is None
                    else c.patient_ref == patient_ref,
                    c.metric == metric,
                    c.unit == unit,
                )
                .order_by(c.id)
            )
        ).all()
        for run in _fitting(members):
            if len(run) > 1:
                merged += await _merge(session, device_id, run)
    return Compacted(merged, seen, more)


def _fitting(members: Sequence[Any]) -> list[list[Any]]:
    """``members`` (in id order) in consecutive runs of at most :data:`MAX_MERGED` readings (a
    chunk that holds more stands alone), so merging again changes nothing."""
    runs: list[list[Any]] = []
    count = 0
    for member in members:
        if runs and count + member.count <= MAX_MERGED:
            runs[-1].append(member)
            count += member.count
        else:
            runs.append([member])
            count = member.count
    return runs


async def _merge(session: AsyncSession, device_id: str, members: Sequence[Any]) -> int:
    """Merge ``members`` (id, count, received, readings; the first's id kept) into one chunk."""
    first = members[0]
    received = min(member.received for member in members)
    readings: list[list[Any]] = []
    moved: list[str] = []
    for member in members:
        text = sqlite_datetime_text(member.received)
        for reading in readings_of(member):
            if len(reading) == 4 and member.received != received:
                reading.append(text)
            readings.append(reading)
            if member.id != first.id:
                moved.append(reading[0])
    readings.sort(key=lambda r: (r[1], r[0]))
    c = ReadingChunkRow
    others = [member.id for member in members[1:]]
    await session.execute(
        update(c)
        .where(c.id == first.id)
        .values(first_ts=moment(readings[0][1]), received=received, **summary(readings))
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        delete(c).where(c.id.in_(others)).execution_options(synchronize_session=False)
    )
    for part in _parts(moved):
        await session.execute(
            update(ChunkKeyRow)
            .where(ChunkKeyRow.device_id == device_id, ChunkKeyRow.reading_id.in_(part))
            .values(chunk_id=first.id)
            .execution_options(synchronize_session=False)
        )
    return len(others)
