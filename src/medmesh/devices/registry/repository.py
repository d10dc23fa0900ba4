"""Every query of devices, their keys and their assignments."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.devices.models import AssignmentRow, DeviceKeyRow, DeviceRow
from medmesh.platform.paging import Keyset, keyset_page


class DeviceRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, *rows: DeviceRow | DeviceKeyRow | AssignmentRow) -> None:
        self.session.add_all(rows)
        await self.session.flush()

    async def get(self, device_id: str) -> DeviceRow | None:
        return await self.session.get(DeviceRow, device_id)

    async def page(self, page: Keyset, status: str | None) -> Sequence[DeviceRow]:
        stmt = select(DeviceRow)
        if status is not None:
            stmt = stmt.where(DeviceRow.status == status)
        after = None if page.after is None else [page.after]
        return (
            await self.session.scalars(keyset_page(stmt, [DeviceRow.id], after, page.limit))
        ).all()

    # --- keys ----------------------------------------------------------------------------

    async def keys(self, device_id: str) -> Sequence[DeviceKeyRow]:
        stmt = select(DeviceKeyRow).where(DeviceKeyRow.device_id == device_id)
        return (await self.session.scalars(stmt.order_by(DeviceKeyRow.id))).all()

    async def key(self, device_id: str, key_id: str) -> DeviceKeyRow | None:
        stmt = select(DeviceKeyRow).where(
            DeviceKeyRow.device_id == device_id, DeviceKeyRow.id == key_id
        )
        return (await self.session.scalars(stmt)).one_or_none()

    async def device_of_key(self, key_hash: str) -> str | None:
        """The device whose live key has this hash."""
        stmt = select(DeviceKeyRow.device_id).where(
            DeviceKeyRow.key_hash == key_hash, DeviceKeyRow.revoked.is_(None)
        )
        return (await self.session.scalars(stmt)).one_or_none()

    # --- assignments -----------------------------------------------------------------------

    async def assignments(self, device_id: str) -> Sequence[AssignmentRow]:
        stmt = select(AssignmentRow).where(AssignmentRow.device_id == device_id)
        return (await self.session.scalars(stmt.order_by(AssignmentRow.start))).all()

    async def assignment(self, device_id: str, assignment_id: str) -> AssignmentRow | None:
        stmt = select(AssignmentRow).where(
            AssignmentRow.device_id == device_id, AssignmentRow.id == assignment_id
        )
        return (await self.session.scalars(stmt)).one_or_none()

    async def open_assignments(self, device_ids: Sequence[str]) -> dict[str, AssignmentRow]:
        """Each device's open assignment (none ended), by device id."""
        stmt = select(AssignmentRow).where(
            AssignmentRow.device_id.in_(device_ids), AssignmentRow.end.is_(None)
        )
        return {row.device_id: row for row in (await self.session.scalars(stmt)).all()}

    async def overlapping(
        self, device_id: str, start: datetime, end: datetime | None, *, exclude: str | None = None
    ) -> AssignmentRow | None:
        """An assignment of the device overlapping [start, end) (end None: open)."""
        ends_after_start = or_(AssignmentRow.end.is_(None), AssignmentRow.end > start)
        starts_before_end = AssignmentRow.start < end if end is not None else and_(True)
        stmt = select(AssignmentRow).where(
            AssignmentRow.device_id == device_id, ends_after_start, starts_before_end
        )
        if exclude is not None:
            stmt = stmt.where(AssignmentRow.id != exclude)
        return (await self.session.scalars(stmt.limit(1))).first()
