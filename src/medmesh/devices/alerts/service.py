"""Alert rules and alerts: create, list, enable or disable rules; list, acknowledge and resolve
alerts; find silent devices (offline rules)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.devices.alerts.evaluation import new_alert
from medmesh.devices.alerts.events import enqueue_alert_event
from medmesh.devices.alerts.repository import AlertRepository, scope_matches
from medmesh.devices.alerts.schemas import RuleCreate
from medmesh.devices.auditing import DevicesAuditor
from medmesh.devices.models import AlertRow, AlertRuleRow
from medmesh.devices.patients import canonical_patient_ref
from medmesh.platform.db import Database, utcnow
from medmesh.platform.errors import BadRequest, Conflict, NotFound
from medmesh.platform.ids import uuid7_hex
from medmesh.platform.origin import RequestOrigin
from medmesh.platform.paging import Keyset


class AlertService:
    def __init__(self, auditor: DevicesAuditor, webhook_url: str) -> None:
        self.auditor = auditor
        self.webhook_url = webhook_url

    async def create_rule(
        self, session: AsyncSession, caller: RequestOrigin, body: RuleCreate
    ) -> AlertRuleRow:
        patient = None
        if body.patient is not None:
            patient = canonical_patient_ref(body.patient)
            if patient is None:
                raise BadRequest(
                    "patient: not a Patient reference (Patient/<id>)", code="invalid_patient"
                )
        row = AlertRuleRow(
            id="rule_" + uuid7_hex(),
            name=body.name,
            kind=body.kind,
            metric=body.metric if body.kind == "threshold" else None,
            component=body.component,
            comparison=body.comparison,
            threshold=body.threshold,
            for_seconds=body.for_seconds,
            in_a_row=body.in_a_row,
            offline_seconds=body.offline_seconds,
            severity=body.severity,
            patient_ref=patient,
            device_id=body.device_id,
            enabled=True,
            created=utcnow(),
        )
        await AlertRepository(session).add(row)
        await self.auditor.record(caller, "devices.alert_rule.create", rule_id=row.id)
        return row

    async def rules(self, session: AsyncSession) -> Sequence[AlertRuleRow]:
        return await AlertRepository(session).rules()

    async def rule(self, session: AsyncSession, rule_id: str) -> AlertRuleRow:
        row = await AlertRepository(session).rule(rule_id)
        if row is None:
            raise NotFound(f"no alert rule {rule_id!r}", code="rule_not_found")
        return row

    async def set_enabled(
        self, session: AsyncSession, caller: RequestOrigin, rule_id: str, enabled: bool
    ) -> AlertRuleRow:
        row = await self.rule(session, rule_id)
        row.enabled = enabled
        await session.flush()
        await self.auditor.record(
            caller, "devices.alert_rule.update", rule_id=row.id, enabled=enabled
        )
        return row

    async def page(
        self,
        session: AsyncSession,
        caller: RequestOrigin,
        page: Keyset,
        status: str | None,
        patient: str | None,
        device_id: str | None,
    ) -> Sequence[AlertRow]:
        patient_ref = None
        if patient is not None:
            patient_ref = canonical_patient_ref(patient)
            if patient_ref is None:
                raise BadRequest(
                    "patient: not a Patient reference (Patient/<id>)", code="invalid_patient"
                )
        rows = await AlertRepository(session).page(page, status, patient_ref, device_id)
        patients = sorted({r.patient_ref for r in rows if r.patient_ref})
        await self.auditor.record(
            caller, "devices.alert.list", patient_refs=patients, count=len(rows)
        )
        return rows

    async def alert(self, session: AsyncSession, alert_id: str) -> AlertRow:
        row = await AlertRepository(session).alert(alert_id)
        if row is None:
            raise NotFound(f"no alert {alert_id!r}", code="alert_not_found")
        return row

    async def acknowledge(
        self, session: AsyncSession, caller: RequestOrigin, alert_id: str
    ) -> AlertRow:
        row = await self.alert(session, alert_id)
        if row.status != "open":
            raise Conflict(f"the alert is {row.status}", code="alert_not_open")
        row.status = "acknowledged"
        row.acknowledged_at = utcnow()
        row.acknowledged_by = caller.subject
        await session.flush()
        await enqueue_alert_event(session, row, "alert.acknowledged", self.webhook_url)
        await self._audit(caller, "devices.alert.acknowledge", row)
        return row

    async def resolve(
        self, session: AsyncSession, caller: RequestOrigin, alert_id: str
    ) -> AlertRow:
        row = await self.alert(session, alert_id)
        if row.status == "resolved":
            raise Conflict("the alert is resolved", code="alert_resolved")
        row.status = "resolved"
        row.resolved_at = utcnow()
        await session.flush()
        await enqueue_alert_event(session, row, "alert.resolved", self.webhook_url)
        await self._audit(caller, "devices.alert.resolve", row)
        return row

    async def _audit(self, caller: RequestOrigin, action: str, row: AlertRow) -> None:
        patients = [row.patient_ref] if row.patient_ref else []
        await self.auditor.record(
            caller, action, device_id=row.device_id, patient_refs=patients, alert_id=row.id
        )

    async def check_offline(self, database: Database) -> int:
        """Open an offline alert for each silent device an enabled offline rule covers (one per
        rule and device); how many were opened."""
        opened = 0
        lock = database.write_lock if database.is_sqlite else None
        if lock is not None:
            await lock.acquire()
        try:
            async with database.unit_of_work() as session:
                repository = AlertRepository(session)
                now = utcnow()
                for rule in await repository.enabled_rules("offline"):
                    silent = await repository.silent_devices(now, rule.offline_seconds or 0.0)
                    covered = [(d, p) for d, p in silent if scope_matches(rule, d, p)]
                    live = await repository.live_alerts([rule.id], [d for d, _ in covered])
                    for device_id, patient in covered:
                        if (rule.id, device_id) in live:
                            continue
                        alert = new_alert(rule, device_id, patient, now)
                        await repository.add(alert)
                        await enqueue_alert_event(session, alert, "alert.opened", self.webhook_url)
                        opened += 1
        finally:
            if lock is not None:
                lock.release()
        return opened
