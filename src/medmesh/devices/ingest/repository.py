"""Every query of ingest: the devices and assignments a batch names, and storing readings."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, insert, or_, select, text, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.devices.models import AssignmentRow, DeviceRow, ReadingKeyRow, ReadingRow
from medmesh.devices.partitions import ReadingPartitions
from medmesh.devices.readings import chunk_repository
from medmesh.platform.db.types import json_column_text

#: The columns of a reading, in the order :meth:`ReadingRepository.insert_rows` takes them.
READING_COLUMNS = (
    "device_id",
    "reading_id",
    "ts",
    "metric",
    "value",
    "components",
    "unit",
    "patient_ref",
    "received",
)
#: A batch's readings on PostgreSQL in one statement, each column an array (``unnest``): the new
#: keys into ``reading_keys`` (its primary key decides which are new), then the readings of those
#: keys into their partitions of ``readings``; answers the keys inserted. The rows come in key
#: order, so two batches holding the same keys take their locks in one order.
NEW_READINGS_POSTGRESQL = text(
    """
WITH batch AS (
    SELECT * FROM unnest(
        CAST(:device_id AS varchar[]), CAST(:reading_id AS varchar[]),
        CAST(:ts AS timestamptz[]), CAST(:metric AS varchar[]), CAST(:value AS float8[]),
        CAST(:components AS text[]), CAST(:unit AS varchar[]), CAST(:patient_ref AS varchar[]),
        CAST(:received AS timestamptz[])
    ) WITH ORDINALITY
      AS b(device_id, reading_id, ts, metric, value, components, unit, patient_ref, received, n)
),
new_keys AS (
    INSERT INTO reading_keys (device_id, reading_id, ts)
    SELECT device_id, reading_id, ts FROM batch ORDER BY n
    ON CONFLICT DO NOTHING
    RETURNING device_id, reading_id
)
INSERT INTO readings (
    device_id, reading_id, ts, metric, value, components, unit, patient_ref, received
)
SELECT b.device_id, b.reading_id, b.ts, b.metric, b.value, CAST(b.components AS json), b.unit,
       b.patient_ref, b.received
FROM batch AS b JOIN new_keys AS k USING (device_id, reading_id)
ORDER BY b.n
RETURNING device_id, reading_id
"""
)


class ReadingRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def statuses(self, device_ids: Collection[str]) -> dict[str, str]:
        """The status of each of these devices that exists."""
        stmt = select(DeviceRow.id, DeviceRow.status).where(DeviceRow.id.in_(device_ids))
        return {device_id: status for device_id, status in await self.session.execute(stmt)}

    async def assignments(
        self, device_ids: Collection[str], first: datetime, last: datetime
    ) -> list[tuple[str, datetime, datetime | None, str]]:
        """(device, start, end, patient) of the assignments of these devices that overlap
        [first, last]."""
        stmt = select(
            AssignmentRow.device_id,
            AssignmentRow.start,
            AssignmentRow.end,
            AssignmentRow.patient_ref,
        ).where(
            AssignmentRow.device_id.in_(device_ids),
            AssignmentRow.start <= last,
            or_(AssignmentRow.end.is_(None), AssignmentRow.end > first),
        )
        return [tuple(row) for row in await self.session.execute(stmt)]

    async def insert_rows(self, rows: Sequence[tuple[Any, ...]]) -> set[tuple[str, str]]:
        """As :meth:`insert_new`, rows given as tuples in :data:`READING_COLUMNS` order (no two
        with the same device and reading id)."""
        dialect = self.session.get_bind().dialect.name
        if dialect == "sqlite":
            return await chunk_repository.store(self.session, rows)
        if dialect == "postgresql" and rows:
            return await self._insert_rows_postgresql(rows)
        return await self.insert_new([dict(zip(READING_COLUMNS, row, strict=True)) for row in rows])

    async def _insert_rows_postgresql(
        self, rows: Sequence[tuple[Any, ...]]
    ) -> set[tuple[str, str]]:
        """:data:`NEW_READINGS_POSTGRESQL`, after the partitions the rows need are made; a JSON
        column's text as every engine writes it (:func:`json_column_text`, ``null`` for None)."""
        await ReadingPartitions(self.session).ensure(row[2] for row in rows)
        ordered = sorted(rows, key=lambda row: (row[0], row[1]))
        columns = [list(column) for column in zip(*ordered, strict=True)]
        columns[5] = [json_column_text(value) for value in columns[5]]
        result = await self.session.execute(
            NEW_READINGS_POSTGRESQL, dict(zip(READING_COLUMNS, columns, strict=True))
        )
        return {(device_id, reading_id) for device_id, reading_id in result.all()}

    async def insert_new(self, rows: Sequence[dict[str, Any]]) -> set[tuple[str, str]]:
        """Insert the readings not stored yet; the (device, reading id) of those inserted (on
        PostgreSQL row by row: :meth:`insert_rows`' plain path; on SQLite as chunks)."""
        if not rows:
            return set()
        dialect = self.session.get_bind().dialect.name
        if dialect == "postgresql":
            return await self._insert_new_partitioned(rows)
        return await chunk_repository.store(
            self.session, [tuple(row[name] for name in READING_COLUMNS) for row in rows]
        )

    async def _insert_new_partitioned(self, rows: Sequence[dict[str, Any]]) -> set[tuple[str, str]]:
        """PostgreSQL: the keys go into ``reading_keys`` (its primary key decides which are
        new), then the new readings into their monthly partitions of ``readings``."""
        await ReadingPartitions(self.session).ensure(row["ts"] for row in rows)
        keys = ReadingKeyRow.__table__
        assert isinstance(keys, Table)
        # In key order, so two batches holding the same keys take their locks in one order.
        ordered = sorted(rows, key=lambda row: (row["device_id"], row["reading_id"]))
        result = await self.session.execute(
            postgresql.insert(keys)
            .on_conflict_do_nothing(index_elements=["device_id", "reading_id"])
            .returning(keys.c.device_id, keys.c.reading_id),
            [
                {"device_id": r["device_id"], "reading_id": r["reading_id"], "ts": r["ts"]}
                for r in ordered
            ],
        )
        inserted = {(device_id, reading_id) for device_id, reading_id in result.all()}
        new = [r for r in ordered if (r["device_id"], r["reading_id"]) in inserted]
        if new:
            readings = ReadingRow.__table__
            assert isinstance(readings, Table)
            await self.session.execute(insert(readings), new)
        return inserted

    async def touch(self, device_ids: Collection[str], seen: datetime) -> None:
        """Move these devices' ``last_seen`` forward to ``seen`` (never back)."""
        await self.session.execute(
            update(DeviceRow)
            .where(
                DeviceRow.id.in_(device_ids),
                or_(DeviceRow.last_seen.is_(None), DeviceRow.last_seen < seen),
            )
            .values(last_seen=seen)
            # No loaded device needs the new value: skip matching the session's objects.
            .execution_options(synchronize_session=False)
        )
