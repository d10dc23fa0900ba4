"""Scopes, the patient compartment and ``?category=`` limits, through the HTTP API."""

from __future__ import annotations

from typing import Any

import httpx

from tests.phi.conftest import PhiHarness
from tests.phi.resources.support import (
    VITAL_SIGNS,
    audit_records,
    observation,
    patient,
    stored_rows,
)


def _forbidden(response: httpx.Response) -> None:
    assert response.status_code == 403, response.text
    body: dict[str, Any] = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["code"] == "forbidden"


async def _two_patients(phi: PhiHarness) -> tuple[str, str]:
    first = await phi.create(patient("Alpha"))
    second = await phi.create(patient("Beta"))
    return first["id"], second["id"]


async def test_patient_token_reads_only_its_compartment(phi: PhiHarness) -> None:
    mine, theirs = await _two_patients(phi)
    my_obs = await phi.create(observation(mine))
    their_obs = await phi.create(observation(theirs))
    token = phi.headers("patient/*.rs", patient=mine, roles=["patient"], sub="patient-user")

    assert (await phi.http.get(f"/fhir/Patient/{mine}", headers=token)).status_code == 200
    assert (
        await phi.http.get(f"/fhir/Observation/{my_obs['id']}", headers=token)
    ).status_code == 200
    assert (
        await phi.http.get(f"/fhir/Observation/{my_obs['id']}/_history/1", headers=token)
    ).status_code == 200
    _forbidden(await phi.http.get(f"/fhir/Patient/{theirs}", headers=token))
    _forbidden(await phi.http.get(f"/fhir/Observation/{their_obs['id']}", headers=token))
    _forbidden(await phi.http.get(f"/fhir/Observation/{their_obs['id']}/_history/1", headers=token))

    refusals = await audit_records(phi.app, actor="patient-user", action="fhir.read")
    assert [(r.outcome, r.patient_ids) for r in refusals] == [
        ("success", [mine]),
        ("success", [mine]),
        ("failure", [theirs]),
        ("failure", [theirs]),
    ]
    assert refusals[-1].details["reason"] == "forbidden"


async def test_patient_token_cannot_write_into_another_compartment(phi: PhiHarness) -> None:
    mine, theirs = await _two_patients(phi)
    token = phi.headers("patient/*.cruds", patient=mine, roles=["patient"])
    before = await stored_rows(phi.app)
    _forbidden(await phi.http.post("/fhir/Observation", json=observation(theirs), headers=token))
    _forbidden(
        await phi.http.put(
            "/fhir/Observation/sneaky", json=observation(theirs, id="sneaky"), headers=token
        )
    )
    # Nor a Patient of its own making, nor resources outside every compartment.
    _forbidden(await phi.http.post("/fhir/Patient", json=patient("Gamma"), headers=token))
    _forbidden(
        await phi.http.post(
            "/fhir/Organization", json={"resourceType": "Organization", "name": "X"}, headers=token
        )
    )
    assert await stored_rows(phi.app) == before

    own = await phi.http.post("/fhir/Observation", json=observation(mine), headers=token)
    assert own.status_code == 201
    # Moving its own Observation into another compartment is refused too.
    moved = {**own.json(), "subject": {"reference": f"Patient/{theirs}"}}
    _forbidden(await phi.http.put(f"/fhir/Observation/{moved['id']}", json=moved, headers=token))
    theirs_obs = await phi.create(observation(theirs))
    _forbidden(await phi.http.delete(f"/fhir/Observation/{theirs_obs['id']}", headers=token))


async def test_patient_token_may_read_shared_reference_data(phi: PhiHarness) -> None:
    mine, _ = await _two_patients(phi)
    org = await phi.create({"resourceType": "Organization", "name": "General Hospital"})
    token = phi.headers("patient/*.rs", patient=mine, roles=["patient"])
    assert (await phi.http.get(f"/fhir/Organization/{org['id']}", headers=token)).status_code == 200


async def test_missing_scope_and_wrong_permission_are_refused(phi: PhiHarness) -> None:
    mine, _ = await _two_patients(phi)
    _forbidden(await phi.http.get(f"/fhir/Patient/{mine}", headers=phi.headers("openid")))
    _forbidden(
        await phi.http.get(f"/fhir/Patient/{mine}", headers=phi.headers("user/Observation.rs"))
    )
    read_only = phi.headers("user/*.rs")
    _forbidden(await phi.http.post("/fhir/Patient", json=patient(), headers=read_only))
    _forbidden(await phi.http.delete(f"/fhir/Patient/{mine}", headers=read_only))
    # v1 scopes are understood too.
    assert (
        await phi.http.get(f"/fhir/Patient/{mine}", headers=phi.headers("user/Patient.read"))
    ).status_code == 200
    v1_write = await phi.http.post(
        "/fhir/Patient", json=patient(), headers=phi.headers("user/Patient.write")
    )
    assert v1_write.status_code == 201


async def test_category_limited_scope(phi: PhiHarness) -> None:
    mine, _ = await _two_patients(phi)
    vital = await phi.create(observation(mine, "vital-signs"))
    lab = await phi.create(observation(mine, "laboratory"))
    token = phi.headers(
        f"patient/Observation.rs?category={VITAL_SIGNS}", patient=mine, roles=["patient"]
    )

    assert (
        await phi.http.get(f"/fhir/Observation/{vital['id']}", headers=token)
    ).status_code == 200
    _forbidden(await phi.http.get(f"/fhir/Observation/{lab['id']}", headers=token))
    _forbidden(await phi.http.get(f"/fhir/Observation/{lab['id']}/_history/1", headers=token))

    found = await phi.http.get("/fhir/Observation", params={"patient": mine}, headers=token)
    assert found.status_code == 200
    ids = {
        entry["resource"]["id"]
        for entry in found.json().get("entry", [])
        if entry["search"]["mode"] == "match"
    }
    assert ids == {vital["id"]}


async def test_category_limit_on_writes(phi: PhiHarness) -> None:
    mine, _ = await _two_patients(phi)
    lab = await phi.create(observation(mine, "laboratory"))
    token = phi.headers("user/Observation.cruds?category=vital-signs")
    created = await phi.http.post(
        "/fhir/Observation", json=observation(mine, "vital-signs"), headers=token
    )
    assert created.status_code == 201
    _forbidden(
        await phi.http.post(
            "/fhir/Observation", json=observation(mine, "laboratory"), headers=token
        )
    )
    # Neither re-labelling a lab result as a vital sign nor deleting it is allowed.
    relabelled = {**lab, "category": observation(mine, "vital-signs")["category"]}
    _forbidden(await phi.http.put(f"/fhir/Observation/{lab['id']}", json=relabelled, headers=token))
    _forbidden(await phi.http.delete(f"/fhir/Observation/{lab['id']}", headers=token))
