"""The core RESTful interactions: create, read, vread, update, delete, history."""

from __future__ import annotations

import asyncio

from tests.phi.conftest import PhiHarness
from tests.phi.resources.support import audit_records, patient, stored_rows

FHIR_JSON = "application/fhir+json"


async def test_create_answers_201_with_location_etag_and_meta(phi: PhiHarness) -> None:
    response = await phi.http.post("/fhir/Patient", json=patient(), headers=phi.headers())
    assert response.status_code == 201
    assert response.headers["content-type"].startswith(FHIR_JSON)
    body = response.json()
    assert body["resourceType"] == "Patient"
    assert body["meta"]["versionId"] == "1"
    assert body["meta"]["lastUpdated"].endswith("Z")
    assert response.headers["ETag"] == 'W/"1"'
    assert response.headers["Location"] == f"http://phi.test/fhir/Patient/{body['id']}/_history/1"
    assert await stored_rows(phi.app) == (1, 1)


async def test_location_follows_each_requests_host(phi: PhiHarness) -> None:
    for host in ("phi.test", "fhir.example.org:8443", "phi.test"):
        headers = {**phi.headers(), "Host": host}
        response = await phi.http.post("/fhir/Patient", json=patient(), headers=headers)
        assert response.status_code == 201
        location = f"http://{host}/fhir/Patient/{response.json()['id']}/_history/1"
        assert response.headers["Location"] == location


async def test_read_and_vread(phi: PhiHarness) -> None:
    created = await phi.create(patient())
    read = await phi.http.get(f"/fhir/Patient/{created['id']}", headers=phi.headers())
    assert read.status_code == 200
    assert read.json() == created
    assert read.headers["ETag"] == 'W/"1"'
    assert "Last-Modified" in read.headers

    vread = await phi.http.get(f"/fhir/Patient/{created['id']}/_history/1", headers=phi.headers())
    assert vread.status_code == 200
    assert vread.json() == created

    missing = await phi.http.get(f"/fhir/Patient/{created['id']}/_history/9", headers=phi.headers())
    assert missing.status_code == 404
    assert missing.json()["resourceType"] == "OperationOutcome"
    unknown = await phi.http.get("/fhir/Patient/does-not-exist", headers=phi.headers())
    assert unknown.status_code == 404
    assert unknown.json()["issue"][0]["code"] == "not-found"


async def test_update_with_if_match_and_stale_version(phi: PhiHarness) -> None:
    created = await phi.create(patient())
    url = f"/fhir/Patient/{created['id']}"
    changed = {**created, "gender": "male"}
    ok = await phi.http.put(url, json=changed, headers={**phi.headers(), "If-Match": 'W/"1"'})
    assert ok.status_code == 200
    assert ok.json()["meta"]["versionId"] == "2"
    assert ok.headers["ETag"] == 'W/"2"'

    stale = await phi.http.put(url, json=changed, headers={**phi.headers(), "If-Match": 'W/"1"'})
    assert stale.status_code == 412
    assert stale.json()["resourceType"] == "OperationOutcome"
    assert await stored_rows(phi.app) == (1, 2)

    old = await phi.http.get(f"{url}/_history/1", headers=phi.headers())
    assert old.json()["gender"] == "female"
    current = await phi.http.get(url, headers=phi.headers())
    assert current.json()["gender"] == "male"


async def test_two_updates_with_the_same_if_match_one_wins(phi: PhiHarness) -> None:
    created = await phi.create(patient())
    url = f"/fhir/Patient/{created['id']}"
    headers = {**phi.headers(), "If-Match": 'W/"1"'}
    first, second = await asyncio.gather(
        phi.http.put(url, json={**created, "gender": "male"}, headers=headers),
        phi.http.put(url, json={**created, "gender": "other"}, headers=headers),
    )
    assert sorted([first.status_code, second.status_code]) == [200, 412]
    assert await stored_rows(phi.app) == (1, 2)
    current = (await phi.http.get(url, headers=phi.headers())).json()
    winner = first if first.status_code == 200 else second
    assert current["gender"] == winner.json()["gender"]
    assert current["meta"]["versionId"] == "2"


async def test_update_creates_with_the_client_id(phi: PhiHarness) -> None:
    url = "/fhir/Patient/client-chosen-1"
    created = await phi.http.put(url, json=patient(id="client-chosen-1"), headers=phi.headers())
    assert created.status_code == 201
    assert created.json()["id"] == "client-chosen-1"
    assert created.headers["Location"].endswith("/fhir/Patient/client-chosen-1/_history/1")
    again = await phi.http.put(url, json=patient(id="client-chosen-1"), headers=phi.headers())
    assert again.status_code == 200
    assert again.json()["meta"]["versionId"] == "2"


async def test_prefer_return_minimal_and_operation_outcome(phi: PhiHarness) -> None:
    minimal = await phi.http.post(
        "/fhir/Patient", json=patient(), headers={**phi.headers(), "Prefer": "return=minimal"}
    )
    assert minimal.status_code == 201
    assert minimal.content == b""
    assert minimal.headers["ETag"] == 'W/"1"'
    assert "/fhir/Patient/" in minimal.headers["Location"]

    outcome = await phi.http.post(
        "/fhir/Patient",
        json=patient(),
        headers={**phi.headers(), "Prefer": "return=OperationOutcome"},
    )
    assert outcome.status_code == 201
    assert outcome.json()["resourceType"] == "OperationOutcome"
    assert outcome.json()["issue"][0]["severity"] == "information"

    full = await phi.http.post(
        "/fhir/Patient",
        json=patient(),
        headers={**phi.headers(), "Prefer": "return=representation"},
    )
    assert full.json()["resourceType"] == "Patient"


async def test_delete_then_read_is_gone_and_history_keeps_every_version(phi: PhiHarness) -> None:
    created = await phi.create(patient())
    url = f"/fhir/Patient/{created['id']}"
    await phi.http.put(url, json={**created, "gender": "male"}, headers=phi.headers())
    deleted = await phi.http.delete(url, headers=phi.headers())
    assert deleted.status_code == 204
    gone = await phi.http.get(url, headers=phi.headers())
    assert gone.status_code == 410
    assert gone.json()["issue"][0]["code"] == "deleted"
    # Deleting again is idempotent.
    assert (await phi.http.delete(url, headers=phi.headers())).status_code == 204

    # The versions before the deletion stay readable; the deletion is a version of its own.
    assert (await phi.http.get(f"{url}/_history/1", headers=phi.headers())).status_code == 200
    assert (await phi.http.get(f"{url}/_history/3", headers=phi.headers())).status_code == 410
    history = await phi.http.get(f"{url}/_history", headers=phi.headers())
    assert history.status_code == 200
    bundle = history.json()
    assert bundle["type"] == "history"
    assert len(bundle["entry"]) == 3
    assert await stored_rows(phi.app) == (1, 3)

    # Update after delete brings it back as a new version.
    revived = await phi.http.put(url, json=created, headers=phi.headers())
    assert revived.status_code == 201
    assert revived.json()["meta"]["versionId"] == "4"


async def test_every_interaction_is_audited(phi: PhiHarness) -> None:
    created = await phi.create(patient())
    pid = created["id"]
    url = f"/fhir/Patient/{pid}"
    await phi.http.get(url, headers=phi.headers())
    await phi.http.get(f"{url}/_history/1", headers=phi.headers())
    await phi.http.put(url, json=created, headers=phi.headers())
    await phi.http.delete(url, headers=phi.headers())
    actions = [r.action for r in await audit_records(phi.app, patient=pid)]
    assert actions == ["fhir.create", "fhir.read", "fhir.vread", "fhir.update", "fhir.delete"]
    record = (await audit_records(phi.app, action="fhir.read"))[0]
    assert record.resource_type == "Patient"
    assert record.resource_id == pid
    assert record.actor == "user-1"
    assert record.client_id == "test-client"
    assert record.source_ip == "198.51.100.20"
    assert record.outcome == "success"
