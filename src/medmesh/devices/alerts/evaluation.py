"""Threshold rules evaluated on new readings, in the transaction that stores them: a rule's
condition held ``for_seconds`` (by reading time) or for ``in_a_row`` readings opens one alert
per (rule, device); the first reading that no longer meets it resolves the alert. Readings are
taken in time order; one older than the latest already evaluated for the rule and device does
not change its state. A reading of a device with an open offline alert resolves that alert."""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.devices.alerts.events import enqueue_alert_event
from medmesh.devices.alerts.repository import AlertRepository, scope_matches
from medmesh.devices.ingest.validation import Reading
from medmesh.devices.models import AlertRow, AlertRuleRow, AlertStateRow
from medmesh.platform.ids import uuid7_hex

COMPARE: dict[str, Callable[[float, float], bool]] = {
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
}


def _value(rule: AlertRuleRow, reading: Reading) -> float:
    if rule.component and reading.components:
        return float(reading.components[rule.component])
    return reading.value


def _met(rule: AlertRuleRow, state: AlertStateRow, ts: datetime) -> bool:
    if rule.for_seconds is not None:
        return (
            state.breach_since is not None
            and (ts - state.breach_since).total_seconds() >= rule.for_seconds
        )
    return state.breach_count >= (rule.in_a_row or 1)


def new_alert(rule: AlertRuleRow, device_id: str, patient: str | None, at: datetime) -> AlertRow:
    return AlertRow(
        id="alr_" + uuid7_hex(),
        rule_id=rule.id,
        kind=rule.kind,
        severity=rule.severity,
        device_id=device_id,
        patient_ref=patient,
        metric=rule.metric,
        status="open",
        opened_at=at,
    )


class AlertEvaluator:
    def __init__(self, webhook_url: str) -> None:
        self.webhook_url = webhook_url

    async def evaluate(
        self, session: AsyncSession, stored: Sequence[tuple[Reading, str | None]], now: datetime
    ) -> None:
        if not stored:
            return
        repository = AlertRepository(session)
        await self._back_online(repository, session, {r.device_id for r, _ in stored}, now)
        rules = await repository.enabled_rules("threshold", {r.metric for r, _ in stored})
        if not rules:
            return
        work = [
            (rule, reading, patient)
            for reading, patient in sorted(stored, key=lambda item: item[0].ts)
            for rule in rules
            if rule.metric == reading.metric and scope_matches(rule, reading.device_id, patient)
        ]
        pairs = {(rule.id, reading.device_id) for rule, reading, _ in work}
        states = await repository.states(pairs)
        live = await repository.live_alerts({r for r, _ in pairs}, {d for _, d in pairs})
        for rule, reading, patient in work:
            key = (rule.id, reading.device_id)
            state = states[key]
            if state.last_ts is not None and reading.ts < state.last_ts:
                continue
            state.last_ts = reading.ts
            comparison = COMPARE[rule.comparison or "lt"]
            if comparison(_value(rule, reading), rule.threshold or 0.0):
                if state.breach_since is None:
                    state.breach_since = reading.ts
                    state.breach_count = 0
                state.breach_count += 1
                if key not in live and _met(rule, state, reading.ts):
                    alert = new_alert(rule, reading.device_id, patient, reading.ts)
                    await repository.add(alert)
                    live[key] = alert
                    await enqueue_alert_event(session, alert, "alert.opened", self.webhook_url)
            else:
                state.breach_since = None
                state.breach_count = 0
                ended = live.pop(key, None)
                if ended is not None:
                    ended.status = "resolved"
                    ended.resolved_at = reading.ts
                    await enqueue_alert_event(session, ended, "alert.resolved", self.webhook_url)
        await session.flush()

    async def _back_online(
        self,
        repository: AlertRepository,
        session: AsyncSession,
        device_ids: set[str],
        now: datetime,
    ) -> None:
        offline = await repository.enabled_rules("offline")
        if not offline:
            return
        live = await repository.live_alerts({r.id for r in offline}, device_ids)
        for alert in live.values():
            alert.status = "resolved"
            alert.resolved_at = now
            await enqueue_alert_event(session, alert, "alert.resolved", self.webhook_url)
