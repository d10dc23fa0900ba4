"""Every query of ingest: the devices and assignments a batch names, and storing readings."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.devices.models import AssignmentRow, DeviceRow, ReadingRow


class ReadingRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def devices(self, device_ids: Collection[str]) -> dict[str, DeviceRow]:
        stmt = select(DeviceRow).where(DeviceRow.id.in_(device_ids))
        return {row.id: row for row in (await self.session.scalars(stmt)).all()}

    async def assignments(
        self, device_ids: Collection[str], first: datetime, last: datetime
    ) -> Sequence[AssignmentRow]:
        """The assignments of these devices that overlap [first, last]."""
        stmt = select(AssignmentRow).where(
            AssignmentRow.device_id.in_(device_ids),
            AssignmentRow.start <= last,
            or_(AssignmentRow.end.is_(None), AssignmentRow.end > first),
        )
        return (await self.session.scalars(stmt)).all()

    async def insert_new(self, rows: Sequence[dict[str, Any]]) -> set[tuple[str, str]]:
        """Insert the readings not stored yet; the (device, reading id) of those inserted."""
        if not rows:
            return set()
        dialect = self.session.get_bind().dialect.name
        dialect_insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        table = ReadingRow.__table__
        assert isinstance(table, Table)
        stmt = (
            dialect_insert(table)
            .on_conflict_do_nothing(index_elements=["device_id", "reading_id"])
            .returning(table.c.device_id, table.c.reading_id)
        )
        result = await self.session.execute(stmt, list(rows))
        return {(device_id, reading_id) for device_id, reading_id in result.all()}

    async def touch(self, device_ids: Collection[str], seen: datetime) -> None:
        """Move these devices' ``last_seen`` forward to ``seen`` (never back)."""
        await self.session.execute(
            update(DeviceRow)
            .where(
                DeviceRow.id.in_(device_ids),
                or_(DeviceRow.last_seen.is_(None), DeviceRow.last_seen < seen),
            )
            .values(last_seen=seen)
        )
