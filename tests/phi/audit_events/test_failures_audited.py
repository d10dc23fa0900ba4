"""Requests that fail after the caller is known still leave one audit record, and metadata one too.

A read answering 404 or 410 and a create refused with 400 each write one ``failure`` record
naming the action, the resource type and id of the URL, the status and error code (never the
message or the body); requests refused before authentication (401) have no caller to record.
"""

from __future__ import annotations

from typing import Any

from medmesh.platform.audit import AuditEntry
from tests.phi.conftest import PhiHarness
from tests.phi.resources.support import audit_records, patient


def _summary(record: AuditEntry) -> dict[str, Any]:
    return {
        "action": record.action,
        "outcome": record.outcome,
        "actor": record.actor,
        "resource_type": record.resource_type,
        "resource_id": record.resource_id,
        "patient_ids": record.patient_ids,
        "details": record.details,
    }


async def _new_records(phi: PhiHarness, before: int) -> list[AuditEntry]:
    return (await audit_records(phi.app))[before:]


async def test_a_read_answering_404_is_audited_as_a_failure(phi: PhiHarness) -> None:
    before = len(await audit_records(phi.app))
    response = await phi.http.get("/fhir/Observation/no-such-id", headers=phi.headers())
    assert response.status_code == 404
    assert response.json()["issue"][0]["code"] == "not-found"

    records = await _new_records(phi, before)
    assert [_summary(r) for r in records] == [
        {
            "action": "fhir.read",
            "outcome": "failure",
            "actor": "user-1",
            "resource_type": "Observation",
            "resource_id": "no-such-id",
            "patient_ids": [],
            "details": {"status": 404, "issue": "not-found"},
        }
    ]
    assert records[0].request_id == response.headers["x-request-id"]


async def test_a_read_of_a_deleted_patient_answering_410_is_audited(phi: PhiHarness) -> None:
    patient_id = (await phi.create(patient("Gone")))["id"]
    deleted = await phi.http.delete(f"/fhir/Patient/{patient_id}", headers=phi.headers())
    assert deleted.status_code == 204
    before = len(await audit_records(phi.app))

    response = await phi.http.get(f"/fhir/Patient/{patient_id}", headers=phi.headers())
    assert response.status_code == 410

    assert [_summary(r) for r in await _new_records(phi, before)] == [
        {
            "action": "fhir.read",
            "outcome": "failure",
            "actor": "user-1",
            "resource_type": "Patient",
            "resource_id": patient_id,
            "patient_ids": [patient_id],
            "details": {"status": 410, "issue": "deleted"},
        }
    ]


async def test_an_invalid_create_answering_400_is_audited_without_its_body(
    phi: PhiHarness,
) -> None:
    before = len(await audit_records(phi.app))
    body = {"resourceType": "Patient", "birthDate": "not-a-date", "name": [{"family": "Secret"}]}
    response = await phi.http.post("/fhir/Patient", json=body, headers=phi.headers())
    assert response.status_code == 400

    records = await _new_records(phi, before)
    assert [_summary(r) for r in records] == [
        {
            "action": "fhir.create",
            "outcome": "failure",
            "actor": "user-1",
            "resource_type": "Patient",
            "resource_id": None,
            "patient_ids": [],
            "details": {"status": 400, "issue": response.json()["issue"][0]["code"]},
        }
    ]
    assert "Secret" not in repr(records[0].details)


async def test_metadata_is_audited_with_the_caller_when_a_token_came(phi: PhiHarness) -> None:
    before = len(await audit_records(phi.app))
    anonymous = await phi.http.get("/fhir/metadata")
    assert anonymous.status_code == 200
    known = await phi.http.get("/fhir/metadata", headers=phi.headers())
    assert known.status_code == 200

    assert [_summary(r) for r in await _new_records(phi, before)] == [
        {
            "action": "fhir.capabilities",
            "outcome": "success",
            "actor": actor,
            "resource_type": "CapabilityStatement",
            "resource_id": None,
            "patient_ids": [],
            "details": {},
        }
        for actor in (None, "user-1")
    ]


async def test_only_requests_without_a_record_of_their_own_get_one(phi: PhiHarness) -> None:
    patient_id = (await phi.create(patient("Walker")))["id"]
    outsider = phi.headers("patient/*.rs", patient="someone-else", sub="outsider")
    before = len(await audit_records(phi.app))

    refused = await phi.http.get(f"/fhir/Patient/{patient_id}", headers=outsider)
    assert refused.status_code == 403
    unauthenticated = await phi.http.get(f"/fhir/Patient/{patient_id}")
    assert unauthenticated.status_code == 401
    missing = await phi.http.get("/fhir/Patient/missing", headers=outsider)
    assert missing.status_code == 404
    # Reading the trail is not audited (it would append to what it pages through), failed or not.
    auditor = phi.headers("audit:read", roles=["auditor"], sub="auditor-1")
    bad = await phi.http.get("/fhir/AuditEvent", params={"date": "yesterday"}, headers=auditor)
    assert bad.status_code == 400
    assert (await phi.http.get("/fhir/AuditEvent/999999", headers=auditor)).status_code == 404

    records = await _new_records(phi, before)
    assert [(r.action, r.outcome, r.actor, r.resource_id) for r in records] == [
        ("fhir.read", "failure", "outsider", patient_id),
        ("fhir.read", "failure", "outsider", "missing"),
    ]
