"""Alerts: threshold rules held for a time or for readings in a row, offline rules, the
open → acknowledged → resolved lifecycle, and signed webhook events."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request

from medmesh.devices.components import DevicesState
from medmesh.platform.testing import DatabaseTemplates, TokenFactory, serve_app
from tests.devices.conftest import INGEST, READ, DevicesHarness, devices_settings_for, run_devices

START = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


async def send(
    devices: DevicesHarness,
    device: dict[str, Any],
    metric: str,
    unit: str,
    values: list[Any],
    first: int = 0,
) -> None:
    entries = [
        {
            "reading_id": f"{metric}-{first + i}",
            "timestamp": (START + timedelta(seconds=10 * (first + i))).isoformat(),
            "metric": metric,
            "value": value,
            "unit": unit,
        }
        for i, value in enumerate(values)
    ]
    body = await devices.ok(
        "POST",
        f"/v1/devices/{device['id']}/readings",
        json={"readings": entries},
        headers=devices.headers(INGEST),
    )
    assert body["rejected"] == 0, body


async def alerts(devices: DevicesHarness, **params: Any) -> list[dict[str, Any]]:
    page = await devices.ok("GET", "/v1/alerts", params=params, headers=devices.headers(READ))
    data: list[dict[str, Any]] = page["data"]
    return data


async def test_spo2_below_90_for_60_seconds_opens_one_alert(devices: DevicesHarness) -> None:
    rule = await devices.ok(
        "POST",
        "/v1/alert-rules",
        201,
        json={
            "name": "low SpO2",
            "metric": "spo2",
            "comparison": "lt",
            "threshold": 90,
            "for_seconds": 60,
            "severity": "critical",
        },
    )
    device = await devices.assigned("Patient/p1")
    # 08:00:00 95 %, then below 90 % from 08:00:10 ... 08:01:00 (50 s: not yet)
    await send(devices, device, "spo2", "%", [95, 89, 88, 87, 86, 85, 84])
    assert await alerts(devices) == []
    # 08:01:10 (60 s below) opens it; 08:01:20 still below opens no second one
    await send(devices, device, "spo2", "%", [86, 85], first=7)
    opened = await alerts(devices)
    assert [
        (a["rule_id"], a["status"], a["severity"], a["patient"], a["opened_at"]) for a in opened
    ] == [(rule["id"], "open", "critical", "Patient/p1", "2026-03-01T08:01:10Z")]
    await send(devices, device, "spo2", "%", [96], first=9)
    resolved = await alerts(devices)
    assert [(a["status"], a["resolved_at"]) for a in resolved] == [
        ("resolved", "2026-03-01T08:01:30Z")
    ]
    # Below again: a new alert needs another 60 s.
    await send(devices, device, "spo2", "%", [80, 80], first=10)
    assert len(await alerts(devices, status="open")) == 0


async def test_in_a_row_rules_and_the_lifecycle(devices: DevicesHarness) -> None:
    await devices.ok(
        "POST",
        "/v1/alert-rules",
        201,
        json={
            "name": "hypertensive",
            "metric": "blood_pressure",
            "component": "systolic",
            "comparison": "ge",
            "threshold": 180,
            "in_a_row": 3,
        },
    )
    device = await devices.assigned("Patient/p1")
    other = await devices.assigned("Patient/p2")
    bp = [{"systolic": s, "diastolic": 90} for s in (185, 190, 120, 181, 182, 183)]
    await send(devices, device, "blood_pressure", "mm[Hg]", bp)
    await send(devices, other, "blood_pressure", "mm[Hg]", bp[:2])
    [alert] = await alerts(devices)
    assert alert["device_id"] == device["id"]
    assert alert["opened_at"] == "2026-03-01T08:00:50Z"
    path = f"/v1/alerts/{alert['id']}"
    acknowledged = await devices.ok("POST", f"{path}/acknowledge")
    assert acknowledged["status"] == "acknowledged"
    assert acknowledged["acknowledged_by"] == "user-1"
    again = await devices.http.post(f"{path}/acknowledge", headers=devices.headers())
    assert again.status_code == 409
    assert again.json()["code"] == "alert_not_open"
    resolved = await devices.ok("POST", f"{path}/resolve")
    assert resolved["status"] == "resolved"
    twice = await devices.http.post(f"{path}/resolve", headers=devices.headers())
    assert twice.status_code == 409
    assert (await devices.ok("GET", path)) == resolved
    assert [a[0] for a in await devices.audit() if a[0].startswith("devices.alert.")][-2:] == [
        "devices.alert.acknowledge",
        "devices.alert.resolve",
    ]


async def test_a_silent_device_raises_an_offline_alert(devices: DevicesHarness) -> None:
    rule = await devices.ok(
        "POST",
        "/v1/alert-rules",
        201,
        json={"name": "silent", "kind": "offline", "offline_seconds": 60},
    )
    silent = await devices.assigned("Patient/p1")
    await devices.register()  # not assigned: not watched
    components = DevicesState.of(devices.app).devices
    assert await components.alerts.check_offline(devices.database) == 1
    assert await components.alerts.check_offline(devices.database) == 0
    [alert] = await alerts(devices)
    assert (alert["rule_id"], alert["kind"], alert["device_id"], alert["status"]) == (
        rule["id"],
        "offline",
        silent["id"],
        "open",
    )
    now = datetime.now(UTC).replace(microsecond=0)
    await devices.ok(
        "POST",
        f"/v1/devices/{silent['id']}/readings",
        json={
            "reading_id": "back",
            "timestamp": now.isoformat(),
            "metric": "heart_rate",
            "value": 70,
            "unit": "/min",
        },
        headers={"X-Device-Key": silent["credential"]["key"]},
    )
    [back] = await alerts(devices)
    assert back["status"] == "resolved"
    assert await components.alerts.check_offline(devices.database) == 0
    disabled = await devices.ok("PATCH", f"/v1/alert-rules/{rule['id']}", json={"enabled": False})
    assert disabled["enabled"] is False


async def test_bad_rules_are_refused(devices: DevicesHarness) -> None:
    cases = [
        {"name": "x", "metric": "mood", "comparison": "lt", "threshold": 1},
        {"name": "x", "metric": "spo2", "comparison": "lt"},
        {
            "name": "x",
            "metric": "spo2",
            "comparison": "lt",
            "threshold": 1,
            "for_seconds": 5,
            "in_a_row": 2,
        },
        {"name": "x", "metric": "blood_pressure", "comparison": "gt", "threshold": 1},
        {
            "name": "x",
            "metric": "spo2",
            "component": "systolic",
            "comparison": "gt",
            "threshold": 1,
        },
        {"name": "x", "kind": "offline"},
        {
            "name": "x",
            "kind": "offline",
            "offline_seconds": 5,
            "patient": "p1",
            "device_id": "dev_x",
        },
        {"name": "x", "metric": "spo2", "comparison": "lt", "threshold": 1, "patient": "Group/x"},
    ]
    for body in cases:
        response = await devices.http.post("/v1/alert-rules", json=body, headers=devices.headers())
        assert response.status_code == 400, (body, response.text)
    assert (await devices.ok("GET", "/v1/alert-rules"))["data"] == []
    for path in ("/v1/alert-rules/rule_x", "/v1/alerts/alr_x"):
        missing = await devices.http.get(path, headers=devices.headers(READ))
        assert missing.status_code == 404


async def test_alert_events_go_to_the_webhook_signed(
    database_url: str,
    tmp_path: Path,
    token_factory: TokenFactory,
    database_templates: DatabaseTemplates,
) -> None:
    received: list[tuple[bytes, str]] = []
    receiver = FastAPI()

    @receiver.post("/hook")
    async def hook(request: Request) -> dict[str, bool]:
        received.append((await request.body(), request.headers["medmesh-signature"]))
        return {"ok": True}

    secret = "whsec-test-secret"
    async with serve_app(receiver) as url:
        settings = devices_settings_for(
            database_url,
            tmp_path,
            alert_webhook_url=f"{url}/hook",
            alert_webhook_secret=secret,
            delivery_poll_seconds=0.05,
        )
        async with run_devices(settings, token_factory, database_templates) as devices:
            await devices.ok(
                "POST",
                "/v1/alert-rules",
                201,
                json={
                    "name": "fever",
                    "metric": "body_temperature",
                    "comparison": "ge",
                    "threshold": 38,
                },
            )
            device = await devices.assigned("Patient/p1")
            await send(devices, device, "body_temperature", "Cel", [38.5, 37.0])
            deadline = time.monotonic() + 60
            while len(received) < 2:
                assert time.monotonic() < deadline, received
                await asyncio.sleep(0.05)
    events = []
    for body, signature in received:
        parts = dict(p.split("=", 1) for p in signature.split(","))
        expected = hmac.new(
            secret.encode(), f"{parts['t']}.".encode() + body, hashlib.sha256
        ).hexdigest()
        assert parts["v1"] == expected
        events.append(json.loads(body))
    assert sorted(e["type"] for e in events) == ["alert.opened", "alert.resolved"]
    assert {e["alert"]["patient"] for e in events} == {"Patient/p1"}
