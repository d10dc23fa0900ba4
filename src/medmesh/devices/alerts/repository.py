"""Every query of alert rules, their per-device states and alerts."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import and_, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.devices.models import (
    AlertRow,
    AlertRuleRow,
    AlertStateRow,
    AssignmentRow,
    DeviceRow,
)
from medmesh.platform.paging import Keyset, keyset_page

LIVE = ("open", "acknowledged")


class AlertRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, *rows: AlertRuleRow | AlertRow) -> None:
        self.session.add_all(rows)
        await self.session.flush()

    async def add_missing(self, rows: Sequence[AlertRuleRow]) -> int:
        """Insert the rules whose ids are not there yet; how many were inserted."""
        present = set(
            await self.session.scalars(
                select(AlertRuleRow.id).where(AlertRuleRow.id.in_([r.id for r in rows]))
            )
        )
        missing = [r for r in rows if r.id not in present]
        self.session.add_all(missing)
        await self.session.flush()
        return len(missing)

    async def rule(self, rule_id: str) -> AlertRuleRow | None:
        return await self.session.get(AlertRuleRow, rule_id)

    async def rules(self) -> Sequence[AlertRuleRow]:
        return (await self.session.scalars(select(AlertRuleRow).order_by(AlertRuleRow.id))).all()

    async def enabled_rules(
        self, kind: str, metrics: Collection[str] | None = None
    ) -> Sequence[AlertRuleRow]:
        stmt = select(AlertRuleRow).where(AlertRuleRow.enabled.is_(True), AlertRuleRow.kind == kind)
        if metrics is not None:
            stmt = stmt.where(AlertRuleRow.metric.in_(metrics))
        return (await self.session.scalars(stmt)).all()

    async def rules_for_readings(self, metrics: Collection[str]) -> Sequence[AlertRuleRow]:
        """The enabled offline rules and the enabled threshold rules of these metrics."""
        stmt = select(AlertRuleRow).where(
            AlertRuleRow.enabled.is_(True),
            or_(
                AlertRuleRow.kind == "offline",
                and_(AlertRuleRow.kind == "threshold", AlertRuleRow.metric.in_(metrics)),
            ),
        )
        return (await self.session.scalars(stmt)).all()

    async def states(
        self, pairs: Collection[tuple[str, str]]
    ) -> dict[tuple[str, str], AlertStateRow]:
        """The states of these (rule, device) pairs, made when missing and locked for this
        transaction on PostgreSQL (two batches of one device wait for each other)."""
        if not pairs:
            return {}
        dialect = self.session.get_bind().dialect.name
        found = await self._states(pairs, lock=dialect == "postgresql")
        missing = sorted(set(pairs) - set(found))
        if missing:  # a rule's first reading of a device: made once, then found
            dialect_insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
            await self.session.execute(
                dialect_insert(AlertStateRow)
                .values([{"rule_id": r, "device_id": d, "breach_count": 0} for r, d in missing])
                .on_conflict_do_nothing(index_elements=["rule_id", "device_id"])
            )
            found.update(await self._states(missing, lock=dialect == "postgresql"))
        return found

    async def _states(
        self, pairs: Collection[tuple[str, str]], *, lock: bool
    ) -> dict[tuple[str, str], AlertStateRow]:
        rules = {r for r, _ in pairs}
        devices = {d for _, d in pairs}
        stmt = select(AlertStateRow).where(
            AlertStateRow.rule_id.in_(rules), AlertStateRow.device_id.in_(devices)
        )
        if lock:
            stmt = stmt.with_for_update()
        rows = (await self.session.scalars(stmt)).all()
        return {
            (row.rule_id, row.device_id): row
            for row in rows
            if (row.rule_id, row.device_id) in pairs
        }

    async def live_alerts(
        self, rule_ids: Collection[str], device_ids: Collection[str]
    ) -> dict[tuple[str, str], AlertRow]:
        """The open or acknowledged alert of each (rule, device)."""
        if not rule_ids or not device_ids:
            return {}
        stmt = select(AlertRow).where(
            AlertRow.rule_id.in_(rule_ids),
            AlertRow.device_id.in_(device_ids),
            AlertRow.status.in_(LIVE),
        )
        return {(a.rule_id, a.device_id): a for a in (await self.session.scalars(stmt)).all()}

    async def alert(self, alert_id: str) -> AlertRow | None:
        return await self.session.get(AlertRow, alert_id)

    async def page(
        self, page: Keyset, status: str | None, patient_ref: str | None, device_id: str | None
    ) -> Sequence[AlertRow]:
        stmt = select(AlertRow)
        if status is not None:
            stmt = stmt.where(AlertRow.status == status)
        if patient_ref is not None:
            stmt = stmt.where(AlertRow.patient_ref == patient_ref)
        if device_id is not None:
            stmt = stmt.where(AlertRow.device_id == device_id)
        after = None if page.after is None else [page.after]
        return (
            await self.session.scalars(keyset_page(stmt, [AlertRow.id], after, page.limit))
        ).all()

    async def silent_devices(self, now: datetime, seconds: float) -> Sequence[tuple[str, str]]:
        """(device, patient) of active devices assigned now whose last reading (or assignment
        start, when none came since) is more than ``seconds`` old."""
        cutoff = now.timestamp() - seconds
        stmt = (
            select(
                DeviceRow.id, AssignmentRow.patient_ref, DeviceRow.last_seen, AssignmentRow.start
            )
            .join(AssignmentRow, AssignmentRow.device_id == DeviceRow.id)
            .where(
                DeviceRow.status == "active",
                AssignmentRow.start <= now,
                or_(AssignmentRow.end.is_(None), AssignmentRow.end > now),
            )
        )
        rows = (await self.session.execute(stmt)).all()
        silent = []
        for device_id, patient_ref, last_seen, start in rows:
            latest = max(t for t in (last_seen, start) if t is not None)
            if latest.timestamp() < cutoff:
                silent.append((device_id, patient_ref))
        return silent


class RuleScope(NamedTuple):
    """A rule's scope as plain values: one device, one patient, or every device (both None)."""

    device_id: str | None
    patient_ref: str | None


def scope_matches(rule: AlertRuleRow | RuleScope, device_id: str, patient_ref: str | None) -> bool:
    """Whether ``rule`` covers this device's reading (for this patient)."""
    if rule.device_id is not None:
        return rule.device_id == device_id
    if rule.patient_ref is not None:
        return rule.patient_ref == patient_ref
    return True
