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
from operator import itemgetter

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
    """One (rule, device) through a batch: the rule's terms and its state as plain values, its
    readings, and the alerts they open or resolve (the state row is set once, after the
    batch)."""

    rule: AlertRuleRow
    #: The rule's position among the batch's rules (ties of time and reading go in rule order).
    position: int
    compare: Callable[[float, float], bool]
    threshold: float
    component: str | None
    for_seconds: float | None
    in_a_row: int
    #: (time, position in the batch, reading, patient) of each reading the rule covers.
    readings: list[tuple[datetime, int, Reading, str | None]]

    @classmethod
    def of(cls, rule: AlertRuleRow, position: int) -> _Track:
        return cls(
            rule,
            position,
            COMPARE[rule.comparison or "lt"],
            rule.threshold or 0.0,
            rule.component,
            rule.for_seconds,
            rule.in_a_row or 1,
            [],
        )

    def run(self, state: AlertStateRow, live: bool) -> list[_Change]:
        """Take the readings in time order (older than the last one evaluated: skipped), update
        ``state`` and answer the alerts opened (``True``) and resolved (``False``)."""
        changes: list[_Change] = []
        last_ts, since, count = state.last_ts, state.breach_since, state.breach_count
        compare, threshold, component = self.compare, self.threshold, self.component
        for_seconds, in_a_row = self.for_seconds, self.in_a_row
        self.readings.sort(key=itemgetter(0, 1))
        for ts, index, reading, patient in self.readings:
            if last_ts is not None and ts < last_ts:
                continue
            last_ts = ts
            if component and reading.components:
                value = float(reading.components[component])
            else:
                value = reading.value
            if compare(value, threshold):
                if since is None:
                    since = ts
                    count = 0
                count += 1
                if live:
                    continue
                if for_seconds is not None:
                    met = (ts - since).total_seconds() >= for_seconds
                else:
                    met = count >= in_a_row
                if met:
                    changes.append((ts, index, self.position, True, self, reading, patient))
                    live = True
            else:
                since = None
                count = 0
                if live:
                    changes.append((ts, index, self.position, False, self, reading, patient))
                    live = False
        if state.last_ts != last_ts:
            state.last_ts = last_ts
        if state.breach_since != since:
            state.breach_since = since
        if state.breach_count != count:
            state.breach_count = count
        return changes


#: An alert opened (True) or resolved (False) at a reading: (time, position of the reading in
#: the batch, position of the rule, opened, track, reading, patient).
_Change = tuple[datetime, int, int, bool, _Track, Reading, "str | None"]


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
        found = await repository.rules_for_readings({r.metric for r, _ in stored})
        if not found:
            return
        # One query for the live alerts of every rule and device of the batch.
        live = await repository.live_alerts(
            {r.id for r in found}, {reading.device_id for reading, _ in stored}
        )
        offline = {r.id for r in found if r.kind == "offline"}
        for key in [key for key in live if key[0] in offline]:
            # A reading of a device with an open offline alert: it is back.
            alert = live.pop(key)
            alert.status = "resolved"
            alert.resolved_at = now
            await enqueue_alert_event(session, alert, "alert.resolved", self.webhook_url)
        rules = [r for r in found if r.kind == "threshold"]
        if not rules:
            return
        # Per metric, each rule with its id and scope read once (a batch asks thousands of
        # times); then each (rule, device) is evaluated on its own readings, and the alerts
        # they open and resolve are written in the order of the readings' times.
        by_metric: dict[str, list[tuple[int, AlertRuleRow, str, RuleScope]]] = {}
        for position, rule in enumerate(rules):
            scope = RuleScope(rule.device_id, rule.patient_ref)
            by_metric.setdefault(rule.metric or "", []).append((position, rule, rule.id, scope))
        tracks: dict[tuple[str, str], _Track] = {}
        for index, (reading, patient) in enumerate(stored):
            for position, rule, rule_id, scope in by_metric.get(reading.metric, ()):
                if not scope_matches(scope, reading.device_id, patient):
                    continue
                key = (rule_id, reading.device_id)
                track = tracks.get(key)
                if track is None:
                    track = tracks[key] = _Track.of(rule, position)
                track.readings.append((reading.ts, index, reading, patient))
        states = await repository.states(set(tracks))
        changes: list[_Change] = []
        for key, track in tracks.items():
            changes.extend(track.run(states[key], key in live))
        changes.sort(key=itemgetter(0, 1, 2))
        for ts, _, _, opened, track, reading, patient in changes:
            key = (track.rule.id, reading.device_id)
            if opened:
                alert = new_alert(track.rule, reading.device_id, patient, ts)
                await repository.add(alert)
                live[key] = alert
                await enqueue_alert_event(session, alert, "alert.opened", self.webhook_url)
            else:
                ended = live.pop(key)
                ended.status = "resolved"
                ended.resolved_at = ts
                await enqueue_alert_event(session, ended, "alert.resolved", self.webhook_url)
        await session.flush()
