"""``$validate`` at type and instance level: an OperationOutcome, nothing stored, audited."""

from __future__ import annotations

from typing import Any

from tests.phi.conftest import PhiHarness
from tests.phi.resources.support import audit_records, observation, patient, stored_rows

ALL_OK = {
    "resourceType": "OperationOutcome",
    "issue": [{"severity": "information", "code": "informational", "diagnostics": "all OK"}],
}


def _parameters(resource: dict[str, Any], mode: str | None = None) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [{"name": "resource", "resource": resource}]
    if mode is not None:
        parameters.append({"name": "mode", "valueCode": mode})
    return {"resourceType": "Parameters", "parameter": parameters}


async def test_a_valid_resource_is_all_ok_and_nothing_is_stored(phi: PhiHarness) -> None:
    owner = (await phi.create(patient("Alpha")))["id"]
    before = await stored_rows(phi.app)
    for body in (observation(owner), _parameters(observation(owner), "create")):
        response = await phi.http.post(
            "/fhir/Observation/$validate", json=body, headers=phi.headers()
        )
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/fhir+json")
        assert response.json() == ALL_OK
    assert await stored_rows(phi.app) == before
    records = await audit_records(phi.app, action="fhir.validate")
    assert [(r.outcome, r.resource_type, r.patient_ids) for r in records] == [
        ("success", "Observation", [owner]),
        ("success", "Observation", [owner]),
    ]


async def test_an_invalid_resource_answers_every_issue_with_its_path(phi: PhiHarness) -> None:
    owner = (await phi.create(patient("Alpha")))["id"]
    bad = observation(owner, status="bogus-code", issued="yesterday")
    response = await phi.http.post("/fhir/Observation/$validate", json=bad, headers=phi.headers())
    assert response.status_code == 200, response.text
    issues = response.json()["issue"]
    assert {(i["code"], i["expression"][0]) for i in issues} == {
        ("code-invalid", "Observation.status"),
        ("value", "Observation.issued"),
    }
    assert all(i["severity"] == "error" for i in issues)
    assert await stored_rows(phi.app) == (1, 1)


async def test_update_mode_checks_the_id_and_the_instance(phi: PhiHarness) -> None:
    owner = (await phi.create(patient("Alpha")))["id"]
    stored = await phi.create(observation(owner))
    url = f"/fhir/Observation/{stored['id']}/$validate"
    same = await phi.http.post(url, params={"mode": "update"}, json=stored, headers=phi.headers())
    assert same.json() == ALL_OK
    other = await phi.http.post(
        url, json=_parameters({**stored, "id": "another"}, "update"), headers=phi.headers()
    )
    assert other.status_code == 200
    assert other.json()["issue"] == [
        {
            "severity": "error",
            "code": "invalid",
            "diagnostics": "the resource id must match the id in the URL",
            "expression": ["Observation.id"],
        }
    ]
    type_level = await phi.http.post(
        "/fhir/Observation/$validate",
        params={"mode": "update"},
        json=stored,
        headers=phi.headers(),
    )
    assert type_level.status_code == 400


async def test_delete_mode_needs_the_instance_and_the_permission(phi: PhiHarness) -> None:
    owner = (await phi.create(patient("Alpha")))["id"]
    stored = await phi.create(observation(owner))
    url = f"/fhir/Observation/{stored['id']}/$validate"
    allowed = await phi.http.post(url, params={"mode": "delete"}, headers=phi.headers())
    assert allowed.status_code == 200, allowed.text
    assert allowed.json() == ALL_OK
    missing = await phi.http.post(
        "/fhir/Observation/nothere/$validate", params={"mode": "delete"}, headers=phi.headers()
    )
    assert missing.status_code == 404
    read_only = await phi.http.post(
        url, params={"mode": "delete"}, headers=phi.headers("system/Observation.rs")
    )
    assert read_only.status_code == 403
    assert read_only.json()["issue"][0]["code"] == "forbidden"
    read = await phi.http.get(f"/fhir/Observation/{stored['id']}", headers=phi.headers())
    assert read.status_code == 200


async def test_a_patient_validates_only_into_its_own_compartment(phi: PhiHarness) -> None:
    mine = (await phi.create(patient("Alpha")))["id"]
    theirs = (await phi.create(patient("Beta")))["id"]
    token = phi.headers("patient/Observation.c", patient=mine, roles=["patient"], sub="pat")
    own = await phi.http.post("/fhir/Observation/$validate", json=observation(mine), headers=token)
    assert own.json() == ALL_OK
    other = await phi.http.post(
        "/fhir/Observation/$validate", json=observation(theirs), headers=token
    )
    assert other.status_code == 403
    records = await audit_records(phi.app, actor="pat", action="fhir.validate")
    assert [(r.outcome, r.patient_ids) for r in records] == [
        ("success", [mine]),
        ("failure", [theirs]),
    ]


async def test_a_bad_mode_or_an_unknown_type_is_refused(phi: PhiHarness) -> None:
    bad_mode = await phi.http.post(
        "/fhir/Patient/$validate",
        params={"mode": "merge"},
        json=patient("Alpha"),
        headers=phi.headers(),
    )
    assert bad_mode.status_code == 400
    assert bad_mode.json()["issue"][0]["code"] == "value"
    unknown = await phi.http.post(
        "/fhir/Spaceship/$validate", json={"resourceType": "Spaceship"}, headers=phi.headers()
    )
    assert unknown.status_code == 404
