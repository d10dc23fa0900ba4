"""The default alert rules: a fresh service has them, a restart makes none twice and keeps one
an operator disabled disabled, and a simulated desaturation opens exactly one alert."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from medmesh.devices.config import DevicesSettings
from medmesh.devices.simulation.vitals import DeviceVitals
from medmesh.platform.testing import DatabaseTemplates, TokenFactory
from tests.devices.conftest import READ, DevicesHarness, devices_settings_for, run_devices

RULES = [
    ("rule_default_high_heart_rate", "heart rate above 130 /min for 60 s", "threshold",
     "heart_rate", "gt", 130.0, 60.0, None, "warning", True),
    ("rule_default_low_spo2", "SpO2 below 90 % for 60 s", "threshold",
     "spo2", "lt", 90.0, 60.0, None, "critical", True),
    ("rule_default_offline", "no reading for 5 minutes", "offline",
     None, None, None, None, 300.0, "warning", True),
]  # fmt: skip


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> DevicesSettings:
    return devices_settings_for(database_url, tmp_path, default_alert_rules=True)


@pytest.fixture
async def devices(
    settings: DevicesSettings, token_factory: TokenFactory, database_templates: DatabaseTemplates
) -> AsyncIterator[DevicesHarness]:
    async with run_devices(settings, token_factory, database_templates) as harness:
        yield harness


async def rules(devices: DevicesHarness) -> list[tuple[Any, ...]]:
    listed = await devices.ok("GET", "/v1/alert-rules")
    fields = ("id", "name", "kind", "metric", "comparison", "threshold", "for_seconds")
    more = ("offline_seconds", "severity", "enabled")
    return [tuple(r[f] for f in fields + more) for r in listed["data"]]


async def test_a_fresh_service_has_the_default_rules_for_every_device(
    devices: DevicesHarness,
) -> None:
    assert await rules(devices) == RULES
    listed = (await devices.ok("GET", "/v1/alert-rules"))["data"]
    assert {(r["patient"], r["device_id"]) for r in listed} == {(None, None)}


async def test_a_restart_makes_none_twice_and_a_disabled_one_stays_disabled(
    devices: DevicesHarness, settings: DevicesSettings, token_factory: TokenFactory
) -> None:
    await devices.ok("PATCH", "/v1/alert-rules/rule_default_offline", json={"enabled": False})
    async with run_devices(settings, token_factory) as again:
        assert await rules(again) == [*RULES[:2], (*RULES[2][:-1], False)]


async def test_without_the_setting_a_service_starts_with_no_rule(
    database_url: str,
    tmp_path: Path,
    token_factory: TokenFactory,
    database_templates: DatabaseTemplates,
) -> None:
    settings = devices_settings_for(database_url, tmp_path, default_alert_rules=False)
    async with run_devices(settings, token_factory, database_templates) as devices:
        assert await rules(devices) == []


async def test_a_simulated_desaturation_opens_one_alert(devices: DevicesHarness) -> None:
    device = await devices.assigned("Patient/p1")
    vitals = DeviceVitals(device["id"], random.Random(7), anomaly_probability=0)
    # Readings every 10 s up to now (no offline alert); a 150 s desaturation from the first.
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=200)
    vitals.episode = ("desaturation", start + timedelta(seconds=150))
    for tick in range(20):
        readings = vitals.next_readings(start + timedelta(seconds=10 * tick))
        body = await devices.ok(
            "POST",
            f"/v1/devices/{device['id']}/readings",
            json={"readings": readings},
            headers={"X-Device-Key": device["credential"]["key"]},
        )
        assert body["rejected"] == 0, body
    page = await devices.ok("GET", "/v1/alerts", headers=devices.headers(READ))
    assert [
        (a["rule_id"], a["metric"], a["severity"], a["patient"], a["opened_at"], a["status"])
        for a in page["data"]
    ] == [
        (
            "rule_default_low_spo2",
            "spo2",
            "critical",
            "Patient/p1",
            (start + timedelta(seconds=60)).isoformat().replace("+00:00", "Z"),
            "resolved",
        )
    ]
