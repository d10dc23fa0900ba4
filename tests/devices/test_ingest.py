"""HTTP ingest: per-entry answers, canonical units, bounds, duplicates, device keys."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.devices.conftest import INGEST, DevicesHarness

TS = "2026-03-01T08:00:00Z"


def reading(reading_id: str = "r1", **fields: Any) -> dict[str, Any]:
    return {
        "reading_id": reading_id,
        "timestamp": TS,
        "metric": "heart_rate",
        "value": 72,
        "unit": "/min",
        **fields,
    }


async def test_a_device_sends_readings_with_its_key(devices: DevicesHarness) -> None:
    device = await devices.assigned("Patient/p1")
    key = {"X-Device-Key": device["credential"]["key"]}
    response = await devices.http.post(
        f"/v1/devices/{device['id']}/readings", json=reading(), headers=key
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "stored": 1,
        "duplicates": 0,
        "rejected": 0,
        "results": [
            {
                "index": 0,
                "device_id": device["id"],
                "reading_id": "r1",
                "status": "stored",
                "code": None,
                "message": None,
            }
        ],
    }
    again = await devices.http.post(
        f"/v1/devices/{device['id']}/readings", json={"readings": [reading()]}, headers=key
    )
    assert again.json()["results"][0]["status"] == "duplicate"
    rows = await devices.rows(
        "SELECT device_id, reading_id, metric, value, unit, patient_ref FROM readings"
    )
    assert rows == [(device["id"], "r1", "heart_rate", 72.0, "/min", "Patient/p1")]
    shown = await devices.ok("GET", f"/v1/devices/{device['id']}")
    assert shown["last_seen"] is not None
    queued = "SELECT count(*) FROM outbox_messages WHERE topic = 'devices.observations'"
    assert await devices.rows(queued) == [(1,)]


async def test_units_are_converted_to_canonical_ucum(devices: DevicesHarness) -> None:
    device = await devices.assigned()
    entries = [
        reading("t", metric="body_temperature", value=98.6, unit="[degF]"),
        reading("w", metric="body_weight", value=154.0, unit="[lb_av]"),
        reading("g", metric="glucose", value=5.5, unit="mmol/L"),
        reading("g2", metric="glucose", value=99, unit="mg/dL"),
        reading(
            "bp", metric="blood_pressure", value={"systolic": 120, "diastolic": 80}, unit="mm[Hg]"
        ),
        reading("s", metric="spo2", value=97, unit="%"),
        reading("rr", metric="respiratory_rate", value=16, unit="/min"),
        reading("st", metric="steps", value=1200, unit="{steps}"),
    ]
    body = await devices.ok(
        "POST",
        f"/v1/devices/{device['id']}/readings",
        json={"readings": entries},
        headers=devices.headers(INGEST),
    )
    assert body["stored"] == 8
    rows = dict(
        (r[0], (r[1], r[2], r[3]))
        for r in await devices.rows("SELECT reading_id, value, unit, components FROM readings")
    )
    assert rows["t"][0] == pytest.approx(37.0)
    assert rows["t"][1] == "Cel"
    assert rows["w"][0] == pytest.approx(69.853225, abs=1e-6)
    assert rows["w"][1] == "kg"
    assert rows["g"][0] == pytest.approx(99.0858, abs=1e-4)
    assert rows["g"][1] == "mg/dL"
    assert rows["bp"][0] == 120.0
    assert rows["bp"][1] == "mm[Hg]"
    assert rows["st"][1] == "{steps}"


async def test_a_mixed_batch_stores_its_valid_entries(devices: DevicesHarness) -> None:
    first = await devices.assigned("Patient/p1")
    second = await devices.register()
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    entries: list[Any] = [
        reading("ok1", device_id=first["id"]),
        reading("ok2", device_id=second["id"], metric="spo2", value=95, unit="%"),
        reading("x1", device_id="dev_unknown"),
        reading("x2", device_id=first["id"], value=900),
        reading("x3", device_id=first["id"], unit="bpm"),
        reading("x4", device_id=first["id"], timestamp=future),
        reading("x5", device_id=first["id"], metric="mood"),
        reading("x6", device_id=first["id"], timestamp="yesterday"),
        reading("x7", device_id=first["id"], timestamp="2026-03-01T08:00:00"),
        reading("x8", device_id=first["id"], metric="blood_pressure", value=120, unit="mm[Hg]"),
        reading("x9", device_id=first["id"], value="72"),
        reading("bad id!", device_id=first["id"]),
        reading("x10", device_id=first["id"], colour="red"),
        "not an object",
        reading("ok1", device_id=first["id"]),
    ]
    body = await devices.ok(
        "POST", "/v1/readings", json={"readings": entries}, headers=devices.headers(INGEST)
    )
    codes = [(r["index"], r["status"], r["code"]) for r in body["results"]]
    assert codes == [
        (0, "stored", None),
        (1, "stored", None),
        (2, "rejected", "unknown_device"),
        (3, "rejected", "implausible_value"),
        (4, "rejected", "unknown_unit"),
        (5, "rejected", "timestamp_in_future"),
        (6, "rejected", "unknown_metric"),
        (7, "rejected", "invalid_timestamp"),
        (8, "rejected", "invalid_timestamp"),
        (9, "rejected", "invalid_value"),
        (10, "rejected", "invalid_value"),
        (11, "rejected", "invalid_reading_id"),
        (12, "rejected", "invalid_entry"),
        (13, "rejected", "invalid_entry"),
        (14, "duplicate", None),
    ]
    assert (body["stored"], body["duplicates"], body["rejected"]) == (2, 1, 12)
    assert body["results"][3]["message"] == (
        "value: outside 20-300 /min (physiologically implausible)"
    )
    assert body["results"][4]["message"] == "unit: for heart_rate one of /min, {beats}/min (UCUM)"
    stored = await devices.rows("SELECT reading_id, patient_ref FROM readings ORDER BY reading_id")
    # The second device is not assigned: its reading is kept and not queued for phi.
    assert stored == [("ok1", "Patient/p1"), ("ok2", None)]
    outbox = await devices.rows(
        "SELECT payload FROM outbox_messages WHERE topic = 'devices.observations'"
    )
    assert len(outbox) == 1
    payload = outbox[0][0] if isinstance(outbox[0][0], dict) else json.loads(outbox[0][0])
    # The message names the reading; its values stay in the readings table only.
    assert [reading_id for _, reading_id in payload["reading_keys"]] == ["ok1"]
    assert set(payload) == {"reading_keys"}


async def test_readings_belong_to_the_patient_assigned_at_their_time(
    devices: DevicesHarness,
) -> None:
    device = await devices.register()
    path = f"/v1/devices/{device['id']}/assignments"
    await devices.ok(
        "POST",
        path,
        201,
        json={"patient": "p1", "start": "2026-01-01T00:00:00Z", "end": "2026-02-01T00:00:00Z"},
    )
    await devices.ok("POST", path, 201, json={"patient": "p2", "start": "2026-02-01T00:00:00Z"})
    entries = [
        reading("before", timestamp="2025-12-31T23:59:59Z"),
        reading("first", timestamp="2026-01-31T23:59:59Z"),
        reading("edge", timestamp="2026-02-01T00:00:00Z"),
        reading("later", timestamp="2026-03-01T00:00:00+01:00"),
    ]
    await devices.ok(
        "POST",
        f"/v1/devices/{device['id']}/readings",
        json={"readings": entries},
        headers={"X-Device-Key": device["credential"]["key"]},
    )
    rows = await devices.rows("SELECT reading_id, patient_ref FROM readings ORDER BY ts")
    assert rows == [
        ("before", None),
        ("first", "Patient/p1"),
        ("edge", "Patient/p2"),
        ("later", "Patient/p2"),
    ]


async def test_device_keys_are_checked(devices: DevicesHarness) -> None:
    device = await devices.assigned()
    other = await devices.register()
    path = f"/v1/devices/{device['id']}/readings"
    key = device["credential"]["key"]
    cases = [
        (path, {"X-Device-Key": "mdk_wrong"}, 401, "invalid_device_key"),
        (path, {"X-Device-Key": other["credential"]["key"]}, 401, "invalid_device_key"),
        (path, {}, 401, "unauthorized"),
        (path, devices.headers("devices:read"), 403, "insufficient_scope"),
    ]
    for url, headers, status, code in cases:
        response = await devices.http.post(url, json=reading(), headers=headers)
        assert response.status_code == status, response.text
        assert response.json()["code"] == code
    # A device key on the batch endpoint binds every entry to that device.
    body = await devices.ok(
        "POST",
        "/v1/readings",
        json={"readings": [reading("a"), reading("b", device_id=other["id"])]},
        headers={"X-Device-Key": key},
    )
    assert [(r["status"], r["code"]) for r in body["results"]] == [
        ("stored", None),
        ("rejected", "wrong_device"),
    ]
    await devices.ok("DELETE", f"/v1/devices/{device['id']}/keys/{device['credential']['id']}")
    revoked = await devices.http.post(path, json=reading("c"), headers={"X-Device-Key": key})
    assert revoked.status_code == 401
    assert revoked.json()["code"] == "invalid_device_key"
    assert await devices.rows("SELECT reading_id FROM readings") == [("a",)]


async def test_bad_envelopes_are_refused_whole(devices: DevicesHarness) -> None:
    device = await devices.assigned()
    headers = {**devices.headers(INGEST), "Content-Type": "application/json"}
    too_many = {"readings": [reading(f"r{i}") for i in range(6)]}
    cases: list[tuple[str, bytes | dict[str, Any], int, str]] = [
        ("/v1/readings", b"{not json", 400, "invalid_json"),
        ("/v1/readings", {"reading": []}, 400, "invalid_request"),
        ("/v1/readings", {"readings": {}}, 400, "invalid_request"),
        (f"/v1/devices/{device['id']}/readings", b"[1, 2]", 400, "invalid_request"),
    ]
    for path, body, status, code in cases:
        content = body if isinstance(body, bytes) else None
        response = await devices.http.post(
            path, content=content, json=None if content else body, headers=headers
        )
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == code
    devices.settings.max_batch_readings = 5
    response = await devices.http.post(
        f"/v1/devices/{device['id']}/readings", json=too_many, headers=headers
    )
    assert response.status_code == 413
    assert response.json()["code"] == "batch_too_large"
    assert await devices.rows("SELECT count(*) FROM readings") == [(0,)]


async def test_inactive_devices_are_refused(devices: DevicesHarness) -> None:
    device = await devices.assigned()
    await devices.ok("PATCH", f"/v1/devices/{device['id']}", json={"status": "inactive"})
    body = await devices.ok(
        "POST",
        f"/v1/devices/{device['id']}/readings",
        json=reading(),
        headers={"X-Device-Key": device["credential"]["key"]},
    )
    assert body["results"][0]["code"] == "device_not_active"
    assert body["results"][0]["message"] == "device_id: the device is inactive"
