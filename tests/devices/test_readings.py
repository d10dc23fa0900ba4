"""Time-series queries: a device's or patient's readings over a window, raw in pages or
aggregated per interval; patient-bound callers see their own; every query is audited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.devices.conftest import INGEST, READ, DevicesHarness

START = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


async def send(
    devices: DevicesHarness,
    device: dict[str, Any],
    values: list[float],
    metric: str = "heart_rate",
    unit: str = "/min",
) -> None:
    entries = [
        {
            "reading_id": f"{metric}-{i}",
            "timestamp": (START + timedelta(seconds=30 * i)).isoformat(),
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
    assert body["stored"] == len(values)


def window(**extra: Any) -> dict[str, Any]:
    return {"start": START.isoformat(), "end": (START + timedelta(hours=1)).isoformat(), **extra}


async def test_raw_readings_in_pages(devices: DevicesHarness) -> None:
    device = await devices.assigned("Patient/p1")
    await send(devices, device, [60, 61, 62, 63, 64])
    await send(devices, device, [97, 98], metric="spo2", unit="%")
    path = f"/v1/devices/{device['id']}/readings"
    first = await devices.ok(
        "GET", path, params=window(metric="heart_rate", limit=3), headers=devices.headers(READ)
    )
    assert [r["value"] for r in first["data"]] == [60, 61, 62]
    assert first["data"][0] == {
        "device_id": device["id"],
        "reading_id": "heart_rate-0",
        "timestamp": "2026-03-01T08:00:00Z",
        "metric": "heart_rate",
        "value": 60.0,
        "components": None,
        "unit": "/min",
        "patient": "Patient/p1",
    }
    rest = await devices.ok(
        "GET",
        path,
        params=window(metric="heart_rate", limit=3, after=first["next_after"]),
        headers=devices.headers(READ),
    )
    assert [r["value"] for r in rest["data"]] == [63, 64]
    assert rest["next_after"] is None
    everything = await devices.ok("GET", path, params=window(), headers=devices.headers(READ))
    assert len(everything["data"]) == 7
    narrow = await devices.ok(
        "GET",
        path,
        params={
            "start": "2026-03-01T08:00:30Z",
            "end": "2026-03-01T08:01:30Z",
            "metric": "heart_rate",
        },
        headers=devices.headers(READ),
    )
    assert [r["value"] for r in narrow["data"]] == [61, 62]


async def test_aggregates_per_interval(devices: DevicesHarness) -> None:
    device = await devices.assigned("Patient/p1")
    await send(devices, device, [60, 62, 70, 80, 90])  # 08:00:00, :30, 08:01:00, :30, 08:02:00
    body = await devices.ok(
        "GET",
        "/v1/patients/p1/readings/aggregates",
        params=window(metric="heart_rate", interval=60),
        headers=devices.headers(READ),
    )
    assert body == {
        "metric": "heart_rate",
        "unit": "/min",
        "interval": 60,
        "data": [
            {"start": "2026-03-01T08:00:00Z", "count": 2, "min": 60.0, "max": 62.0, "avg": 61.0},
            {"start": "2026-03-01T08:01:00Z", "count": 2, "min": 70.0, "max": 80.0, "avg": 75.0},
            {"start": "2026-03-01T08:02:00Z", "count": 1, "min": 90.0, "max": 90.0, "avg": 90.0},
        ],
    }
    hourly = await devices.ok(
        "GET",
        f"/v1/devices/{device['id']}/readings/aggregates",
        params=window(metric="heart_rate", interval=3600),
        headers=devices.headers(READ),
    )
    assert hourly["data"] == [
        {"start": "2026-03-01T08:00:00Z", "count": 5, "min": 60.0, "max": 90.0, "avg": 72.4}
    ]
    actions = [a for a in await devices.audit() if a[0] == "devices.readings.read"]
    assert actions == [
        ("devices.readings.read", None, ["p1"]),
        ("devices.readings.read", device["id"], []),
    ]


async def test_patient_bound_callers_read_their_own(devices: DevicesHarness) -> None:
    mine = await devices.assigned("Patient/p1")
    theirs = await devices.assigned("Patient/p2")
    await send(devices, mine, [60])
    await send(devices, theirs, [70])
    bound = devices.headers(READ, patient="p1")
    own = await devices.ok("GET", "/v1/patients/p1/readings", params=window(), headers=bound)
    assert [r["value"] for r in own["data"]] == [60]
    other = await devices.http.get("/v1/patients/p2/readings", params=window(), headers=bound)
    assert other.status_code == 403
    through_device = await devices.ok(
        "GET", f"/v1/devices/{theirs['id']}/readings", params=window(), headers=bound
    )
    assert through_device["data"] == []


async def test_bad_queries(devices: DevicesHarness) -> None:
    headers = devices.headers(READ)
    cases: list[tuple[str, dict[str, Any], str]] = [
        (
            "/v1/patients/p1/readings",
            {"start": "2026-03-01T09:00:00Z", "end": "2026-03-01T08:00:00Z"},
            "invalid_window",
        ),
        ("/v1/patients/p1/readings", window(metric="mood"), "unknown_metric"),
        ("/v1/patients/p1/readings", window(after="!!"), "invalid_after"),
        ("/v1/patients/bad%20id/readings", window(), "invalid_patient"),
        (
            "/v1/patients/p1/readings/aggregates",
            {
                "start": "2026-01-01T00:00:00Z",
                "end": "2026-03-01T00:00:00Z",
                "metric": "heart_rate",
                "interval": 1,
            },
            "too_many_buckets",
        ),
        ("/v1/patients/p1/readings/aggregates", window(interval=60), "invalid_request"),
        (
            "/v1/patients/p1/readings",
            {"start": "2026-03-01T08:00:00", "end": "2026-03-01T09:00:00Z"},
            "invalid_request",
        ),
        # In UTC, an hour before the year 1.
        (
            "/v1/devices/dev_x/readings",
            {"start": "0001-01-01T00:00:00+01:00", "end": "2026-03-01T09:00:00Z"},
            "invalid_window",
        ),
    ]
    for path, params, code in cases:
        response = await devices.http.get(path, params=params, headers=headers)
        assert response.status_code == 400, (path, response.text)
        assert response.json()["code"] == code
