"""Rows as the API shows them."""

from __future__ import annotations

from medmesh.devices.alerts.schemas import AlertView, RuleView
from medmesh.devices.models import AlertRow, AlertRuleRow


def rule_view(row: AlertRuleRow) -> RuleView:
    return RuleView(
        id=row.id,
        name=row.name,
        kind=row.kind,
        metric=row.metric,
        component=row.component,
        comparison=row.comparison,
        threshold=row.threshold,
        for_seconds=row.for_seconds,
        in_a_row=row.in_a_row,
        offline_seconds=row.offline_seconds,
        severity=row.severity,
        patient=row.patient_ref,
        device_id=row.device_id,
        enabled=row.enabled,
        created=row.created,
    )


def alert_view(row: AlertRow) -> AlertView:
    return AlertView(
        id=row.id,
        rule_id=row.rule_id,
        kind=row.kind,
        severity=row.severity,
        device_id=row.device_id,
        patient=row.patient_ref,
        metric=row.metric,
        status=row.status,
        opened_at=row.opened_at,
        acknowledged_at=row.acknowledged_at,
        acknowledged_by=row.acknowledged_by,
        resolved_at=row.resolved_at,
    )
