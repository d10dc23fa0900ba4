"""Threshold rules evaluated on new readings, in the transaction that stores them: a rule's
condition held ``for_seconds`` (by reading time) or for ``in_a_row`` readings opens one alert
per (rule, device); the first reading that no longer meets it resolves the alert. Readings are
taken in time order; one older than the latest already evaluated for the rule and device does
not change its state. A reading of a device with an open offline alert resolves that alert."""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.devices.alerts.events import enqueue_alert_event
from medmesh.devices.alerts.repository import AlertRepository, RuleScope, scope_matches
from medmesh.devices.ingest.validation import Reading
from medmesh.devices.models import AlertRow, AlertRuleRow, AlertStateRow
from medmesh.platform.ids import uuid7_hex

COMPARE: dict[str, Callable[[float, float], bool]] = {
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
}


@dataclass(slots=True)
class _Track:
    """One (rule, device) through a batch: the rule's terms and its state, as plain attributes
    (the state row's instrumented attributes are set once, after the batch)."""

    rule: AlertRuleRow
    state: AlertStateRow
    compare: Callable[[float, float], bool]
    threshold: float
    component: str | None
    for_seconds: float | None
    in_a_row: int
    last_ts: datetime | None
    breach_since: datetime | None
    breach_count: int

    @classmethod
    def of(cls, rule: AlertRuleRow, state: AlertStateRow) -> _Track:
        return cls(
            rule,
            state,
            COMPARE[rule.comparison or "lt"],
            rule.threshold or 0.0,
            rule.component,
            rule.for_seconds,
            rule.in_a_row or 1,
            state.last_ts,
            state.breach_since,
            state.breach_count,
        )

    def value(self, reading: Reading) -> float:
        if self.component and reading.components:
            return float(reading.components[self.component])
        return reading.value

    def met(self, ts: datetime) -> bool:
        if self.for_seconds is not None:
            since = self.breach_since
            return since is not None and (ts - since).total_seconds() >= self.for_seconds
        return self.breach_count >= self.in_a_row

    def save(self) -> None:
        state = self.state
        if state.last_ts != self.last_ts:
            state.last_ts = self.last_ts
        if state.breach_since != self.breach_since:
            state.breach_since = self.breach_since
        if state.breach_count != self.breach_count:
            state.breach_count = self.breach_count


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
        # Per metric, each rule with its scope read once (a batch asks thousands of times).
        by_metric: dict[str, list[tuple[AlertRuleRow, RuleScope]]] = {}
        for rule in rules:
            scope = RuleScope(rule.device_id, rule.patient_ref)
            by_metric.setdefault(rule.metric or "", []).append((rule, scope))
        work = [
            (rule, reading, patient)
            for reading, patient in sorted(stored, key=lambda item: item[0].ts)
            for rule, scope in by_metric.get(reading.metric, ())
            if scope_matches(scope, reading.device_id, patient)
        ]
        pairs = {(rule.id, reading.device_id) for rule, reading, _ in work}
        states = await repository.states(pairs)
        live = await repository.live_alerts({r for r, _ in pairs}, {d for _, d in pairs})
        tracks: dict[tuple[str, str], _Track] = {}
        for rule, reading, patient in work:
            key = (rule.id, reading.device_id)
            track = tracks.get(key)
            if track is None:
                track = tracks[key] = _Track.of(rule, states[key])
            ts = reading.ts
            if track.last_ts is not None and ts < track.last_ts:
                continue
            track.last_ts = ts
            if track.compare(track.value(reading), track.threshold):
                if track.breach_since is None:
                    track.breach_since = ts
                    track.breach_count = 0
                track.breach_count += 1
                if key not in live and track.met(ts):
                    alert = new_alert(rule, reading.device_id, patient, ts)
                    await repository.add(alert)
                    live[key] = alert
                    await enqueue_alert_event(session, alert, "alert.opened", self.webhook_url)
            else:
                track.breach_since = None
                track.breach_count = 0
                ended = live.pop(key, None)
                if ended is not None:
                    ended.status = "resolved"
                    ended.resolved_at = ts
                    await enqueue_alert_event(session, ended, "alert.resolved", self.webhook_url)
        for track in tracks.values():
            track.save()
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
