"""Batch Bundles at POST /fhir: every entry on its own."""

from __future__ import annotations

from typing import Any

from tests.phi.bundles.builders import (
    SYNTHEA,
    audit_records,
    bundle,
    delete,
    get,
    located_id,
    observation,
    organization,
    patient,
    post,
    put,
    status_of,
    statuses,
    urn,
)
from tests.phi.conftest import PhiHarness


async def _send(
    phi: PhiHarness, body: dict[str, Any], scope: str = "system/*.cruds", **claims: Any
) -> Any:
    response = await phi.http.post("/fhir", json=body, headers=phi.headers(scope, **claims))
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    assert result["type"] == "batch-response"
    return result


async def test_failing_entries_do_not_stop_the_others(phi: PhiHarness) -> None:
    await phi.http.put("/fhir/Patient/gone", json=patient(id="gone"), headers=phi.headers())
    body = bundle(
        "batch",
        post(patient()),
        post(observation("Patient/b-1", status="banana")),
        put(patient(id="b-1")),
        delete("Patient/gone"),
        get("Patient/nobody"),
        {"request": {"method": "POST"}},
        put(patient(id="b-2", active=True), if_match='W/"9"'),
        get("Patient/b-1"),
    )
    result = await _send(phi, body)

    assert statuses(result) == ["201", "400", "201", "204", "404", "400", "412", "200"]
    for failed in (1, 4, 5, 6):
        outcome = result["entry"][failed]["response"]["outcome"]
        assert outcome["resourceType"] == "OperationOutcome"
        assert outcome["issue"][0]["expression"] == [f"Bundle.entry[{failed}]"]
    assert await status_of(phi, f"Patient/{located_id(result['entry'][0])}") == 200
    assert await status_of(phi, "Patient/b-1") == 200
    assert await status_of(phi, "Patient/b-2") == 404
    assert await status_of(phi, "Patient/gone") == 410
    assert result["entry"][7]["resource"]["id"] == "b-1"
    [record] = await audit_records(phi, "fhir.batch")
    assert record.details == {"entries": 8, "failed": 4}


async def test_if_none_exist_in_batches(phi: PhiHarness) -> None:
    query = f"identifier={SYNTHEA}|org-b"
    first = await _send(
        phi,
        bundle(
            "batch",
            post(organization("org-b"), urn(), query),
            post(organization("org-b"), urn(), query),
        ),
    )
    assert statuses(first) == ["201", "200"]
    created = located_id(first["entry"][0])
    assert located_id(first["entry"][1]) == created

    again = await _send(phi, bundle("batch", post(organization("org-b"), urn(), query)))
    assert statuses(again) == ["200"]
    assert located_id(again["entry"][0]) == created
    search = await phi.http.get(f"/fhir/Organization?{query}&_summary=count", headers=phi.headers())
    assert search.json()["total"] == 1


async def test_identifier_only_references_are_kept(phi: PhiHarness) -> None:
    location = {
        "resourceType": "Location",
        "name": "Clinic",
        "managingOrganization": {
            "identifier": {"system": SYNTHEA, "value": "org-c"},
            "display": "Clinic",
        },
    }
    result = await _send(phi, bundle("batch", post(location, urn(), f"identifier={SYNTHEA}|loc-c")))
    stored = await phi.http.get(
        f"/fhir/Location/{located_id(result['entry'][0])}", headers=phi.headers()
    )
    assert stored.json()["managingOrganization"] == location["managingOrganization"]


async def test_conditional_reference_failures_stay_in_their_entry(phi: PhiHarness) -> None:
    clinic = await phi.create(organization("org-d"))
    good = {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "serviceProvider": {"reference": f"Organization?identifier={SYNTHEA}|org-d"},
    }
    bad = {**good, "serviceProvider": {"reference": f"Organization?identifier={SYNTHEA}|missing"}}
    result = await _send(phi, bundle("batch", post(good), post(bad)))
    assert statuses(result) == ["201", "404"]
    stored = await phi.http.get(
        f"/fhir/Encounter/{located_id(result['entry'][0])}", headers=phi.headers()
    )
    assert stored.json()["serviceProvider"]["reference"] == f"Organization/{clinic['id']}"


async def test_patient_token_entries_outside_its_compartment_fail(phi: PhiHarness) -> None:
    for pid in ("mine", "theirs"):
        await phi.http.put(f"/fhir/Patient/{pid}", json=patient(id=pid), headers=phi.headers())
    body = bundle(
        "batch",
        post(observation("Patient/mine")),
        post(observation("Patient/theirs")),
        get("Patient/theirs"),
    )
    result = await _send(phi, body, "patient/*.cruds", patient="mine")
    assert statuses(result) == ["201", "403", "403"]
