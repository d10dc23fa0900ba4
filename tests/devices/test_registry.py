"""The registry: devices, keys shown once and stored hashed, assignments over time."""

from __future__ import annotations

import hashlib

from tests.devices.conftest import READ, DevicesHarness


async def test_a_device_is_registered_with_a_key_shown_once(devices: DevicesHarness) -> None:
    body = {
        "udi": "(01)00844588003288",
        "manufacturer": "Acme",
        "model": "Pulse 2",
        "serial_number": "SN-77",
        "type": {"code": "706767009", "display": "Patient data recorder"},
        "firmware_version": "1.4.2",
    }
    response = await devices.http.post("/v1/devices", json=body, headers=devices.headers())
    assert response.status_code == 201, response.text
    created = response.json()
    device_id, key = created["id"], created["credential"]["key"]
    assert response.headers["location"] == f"/v1/devices/{device_id}"
    assert device_id.startswith("dev_")
    assert key.startswith("mdk_")
    assert {k: created[k] for k in body} == body
    assert created["status"] == "active"
    assert created["last_seen"] is None
    assert created["assignment"] is None

    shown = await devices.ok("GET", f"/v1/devices/{device_id}", headers=devices.headers(READ))
    assert "credential" not in shown
    assert shown["serial_number"] == "SN-77"
    stored = await devices.rows("SELECT key_hash FROM device_keys")
    assert stored == [(hashlib.sha256(key.encode()).hexdigest(),)]
    keys = await devices.ok("GET", f"/v1/devices/{device_id}/keys", headers=devices.headers(READ))
    assert keys == {
        "data": [
            {
                "id": created["credential"]["id"],
                "created": created["credential"]["created"],
                "revoked": None,
            }
        ]
    }


async def test_keys_rotate_and_revoke(devices: DevicesHarness) -> None:
    device = await devices.register()
    path = f"/v1/devices/{device['id']}/keys"
    second = await devices.ok("POST", path, 201)
    assert second["key"] != device["credential"]["key"]
    revoked = await devices.ok("DELETE", f"{path}/{device['credential']['id']}")
    assert revoked["id"] == device["credential"]["id"]
    assert revoked["revoked"] is not None
    again = await devices.ok("DELETE", f"{path}/{device['credential']['id']}")
    assert again == revoked
    listed = await devices.ok("GET", path)
    assert [k["revoked"] is None for k in listed["data"]] == [False, True]
    missing = await devices.http.delete(f"{path}/dk_nope", headers=devices.headers())
    assert missing.status_code == 404
    assert missing.json()["code"] == "key_not_found"


async def test_assignments_never_overlap(devices: DevicesHarness) -> None:
    device = await devices.register()
    path = f"/v1/devices/{device['id']}/assignments"
    first = await devices.ok(
        "POST", path, 201, json={"patient": "p1", "start": "2026-01-01T00:00:00Z"}
    )
    assert first["patient"] == "Patient/p1"
    assert first["end"] is None
    shown = await devices.ok("GET", f"/v1/devices/{device['id']}")
    assert shown["assignment"] == first

    overlap = await devices.http.post(
        path,
        json={"patient": "Patient/p2", "start": "2026-02-01T00:00:00Z"},
        headers=devices.headers(),
    )
    assert overlap.status_code == 409
    assert overlap.json()["code"] == "assignment_conflict"

    ended = await devices.ok(
        "POST", f"{path}/{first['id']}/end", json={"end": "2026-02-01T00:00:00Z"}
    )
    assert ended["end"] == "2026-02-01T00:00:00Z"
    second = await devices.ok(
        "POST",
        path,
        201,
        json={"patient": "http://phi.test/fhir/Patient/p2", "start": "2026-02-01T00:00:00Z"},
    )
    assert second["patient"] == "Patient/p2"
    listed = await devices.ok("GET", path)
    assert [a["patient"] for a in listed["data"]] == ["Patient/p1", "Patient/p2"]

    twice = await devices.http.post(f"{path}/{first['id']}/end", json={}, headers=devices.headers())
    assert twice.status_code == 409
    assert await devices.audit() == [
        ("devices.device.create", device["id"], []),
        ("devices.assignment.create", device["id"], ["p1"]),
        ("devices.assignment.end", device["id"], ["p1"]),
        ("devices.assignment.create", device["id"], ["p2"]),
    ]


async def test_bad_registry_input_changes_nothing(devices: DevicesHarness) -> None:
    device = await devices.register()
    cases = [
        ("POST", "/v1/devices", {"status": "broken"}, 400, "invalid_request"),
        ("POST", "/v1/devices", {"type": {"code": "abc"}}, 400, "invalid_request"),
        ("POST", "/v1/devices", {"colour": "red"}, 400, "invalid_request"),
        ("GET", "/v1/devices/dev_missing", None, 404, "device_not_found"),
        (
            "POST",
            f"/v1/devices/{device['id']}/assignments",
            {"patient": "Practitioner/x"},
            400,
            "invalid_patient",
        ),
        (
            "POST",
            f"/v1/devices/{device['id']}/assignments",
            {"patient": "p1", "start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"},
            409,
            "assignment_conflict",
        ),
        (
            "POST",
            f"/v1/devices/{device['id']}/assignments/asg_nope/end",
            {},
            404,
            "assignment_not_found",
        ),
    ]
    for method, path, body, status, code in cases:
        response = await devices.http.request(method, path, json=body, headers=devices.headers())
        assert response.status_code == status, (path, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == code
    assert await devices.rows("SELECT count(*) FROM devices") == [(1,)]
    assert await devices.rows("SELECT count(*) FROM assignments") == [(0,)]


async def test_scopes_are_required(devices: DevicesHarness) -> None:
    reader = devices.headers(READ)
    refused = await devices.http.post("/v1/devices", json={}, headers=reader)
    assert refused.status_code == 403
    anonymous = await devices.http.get("/v1/devices")
    assert anonymous.status_code == 401
    other = await devices.http.get("/v1/devices", headers=devices.headers("payments:read"))
    assert other.status_code == 403


async def test_devices_are_listed_in_pages_and_retired_for_good(devices: DevicesHarness) -> None:
    ids = [(await devices.register(serial_number=f"SN-{i}"))["id"] for i in range(3)]
    first = await devices.ok("GET", "/v1/devices", params={"limit": 2})
    assert [d["id"] for d in first["data"]] == ids[:2]
    rest = await devices.ok("GET", "/v1/devices", params={"limit": 2, "after": first["next_after"]})
    assert [d["id"] for d in rest["data"]] == ids[2:]
    assert rest["next_after"] is None

    retired = await devices.ok("PATCH", f"/v1/devices/{ids[0]}", json={"status": "retired"})
    assert retired["status"] == "retired"
    assert retired["serial_number"] == "SN-0"
    back = await devices.http.patch(
        f"/v1/devices/{ids[0]}", json={"status": "active"}, headers=devices.headers()
    )
    assert back.status_code == 409
    assert back.json()["code"] == "device_retired"
    no_key = await devices.http.post(f"/v1/devices/{ids[0]}/keys", headers=devices.headers())
    assert no_key.status_code == 409
    only = await devices.ok("GET", "/v1/devices", params={"status": "retired"})
    assert [d["id"] for d in only["data"]] == [ids[0]]
    updated = await devices.ok("PATCH", f"/v1/devices/{ids[1]}", json={"firmware_version": "2.0"})
    assert updated["firmware_version"] == "2.0"
    assert updated["model"] == "Pulse 2"
