"""The alert rules a fresh service starts with: SpO2 below 90 % for 60 s, heart rate above 130
/min for 60 s, and no reading for 5 minutes, each for every device. They have fixed ids and are
made only when missing, so every start (and every replica) may ask for them; one an operator
disabled stays disabled. ``MEDMESH_DEVICES_DEFAULT_ALERT_RULES=false`` starts without them."""

from __future__ import annotations

from medmesh.devices.alerts.repository import AlertRepository
from medmesh.devices.models import AlertRuleRow
from medmesh.platform.db import Database, utcnow

#: id -> the rule's fields
DEFAULT_RULES: dict[str, dict[str, str | float]] = {
    "rule_default_low_spo2": {
        "name": "SpO2 below 90 % for 60 s",
        "kind": "threshold",
        "metric": "spo2",
        "comparison": "lt",
        "threshold": 90.0,
        "for_seconds": 60.0,
        "severity": "critical",
    },
    "rule_default_high_heart_rate": {
        "name": "heart rate above 130 /min for 60 s",
        "kind": "threshold",
        "metric": "heart_rate",
        "comparison": "gt",
        "threshold": 130.0,
        "for_seconds": 60.0,
        "severity": "warning",
    },
    "rule_default_offline": {
        "name": "no reading for 5 minutes",
        "kind": "offline",
        "offline_seconds": 300.0,
        "severity": "warning",
    },
}


async def ensure_default_rules(database: Database) -> int:
    """Make the default rules that are missing; how many were made."""
    now = utcnow()
    rows = [
        AlertRuleRow(id=rule_id, enabled=True, created=now, **fields)
        for rule_id, fields in DEFAULT_RULES.items()
    ]
    lock = database.write_lock if database.is_sqlite else None
    if lock is not None:
        await lock.acquire()
    try:
        async with database.unit_of_work() as session:
            return await AlertRepository(session).add_missing(rows)
    finally:
        if lock is not None:
            lock.release()
