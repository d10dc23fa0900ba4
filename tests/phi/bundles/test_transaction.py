"""Transaction Bundles at POST /fhir: placeholders, all or nothing, conditional creates and references."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from tests.phi.bundles.builders import (
    SYNTHEA,
    audit_records,
    bundle,
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

HL7 = Path("/work/shared/conformance/hl7")


async def _send(
    phi: PhiHarness, body: dict[str, Any], scope: str = "system/*.cruds", **claims: Any
) -> Any:
    return await phi.http.post("/fhir", json=body, headers=phi.headers(scope, **claims))


async def _read(phi: PhiHarness, url: str) -> dict[str, Any]:
    response = await phi.http.get(f"/fhir/{url}", headers=phi.headers())
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_placeholders_are_rewritten_everywhere(phi: PhiHarness) -> None:
    person, visit = urn(), urn()
    obs = observation(
        person,
        encounter={"reference": visit},
        performer=[{"identifier": {"system": "http://hl7.org/fhir/sid/us-npi", "value": "99"}}],
        extension=[{"url": "http://example.org/focus", "valueReference": {"reference": person}}],
        contained=[
            {
                "resourceType": "Observation",
                "id": "c1",
                "status": "final",
                "code": {"text": "part"},
                "subject": {"reference": person},
            }
        ],
        hasMember=[{"reference": "#c1"}],
    )
    encounter = {
        "resourceType": "Encounter",
        "status": "finished",
        "subject": {"reference": person},
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
    }
    response = await _send(
        phi, bundle("transaction", post(obs), post(encounter, visit), post(patient(), person))
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["resourceType"] == "Bundle"
    assert body["type"] == "transaction-response"
    assert statuses(body) == ["201", "201", "201"]
    obs_id, encounter_id, patient_id = (located_id(e) for e in body["entry"])
    stored = await _read(phi, f"Observation/{obs_id}")
    assert stored["subject"]["reference"] == f"Patient/{patient_id}"
    assert stored["encounter"]["reference"] == f"Encounter/{encounter_id}"
    assert stored["extension"][0]["valueReference"]["reference"] == f"Patient/{patient_id}"
    assert stored["contained"][0]["subject"]["reference"] == f"Patient/{patient_id}"
    assert stored["hasMember"] == [{"reference": "#c1"}]
    assert stored["performer"] == [
        {"identifier": {"system": "http://hl7.org/fhir/sid/us-npi", "value": "99"}}
    ]
    assert (await _read(phi, f"Encounter/{encounter_id}"))["subject"][
        "reference"
    ] == f"Patient/{patient_id}"
    assert body["entry"][2]["response"]["location"] == f"Patient/{patient_id}/_history/1"


async def test_absolute_full_urls_resolve_relative_references(phi: PhiHarness) -> None:
    entry = post(patient(), "http://example.org/fhir/Patient/abc")
    response = await _send(phi, bundle("transaction", entry, post(observation("Patient/abc"))))
    assert response.status_code == 200, response.text
    patient_id, obs_id = (located_id(e) for e in response.json()["entry"])
    assert patient_id != "abc"
    assert (await _read(phi, f"Observation/{obs_id}"))["subject"][
        "reference"
    ] == f"Patient/{patient_id}"


async def test_representation_is_returned_when_preferred(phi: PhiHarness) -> None:
    headers = {**phi.headers(), "Prefer": "return=representation"}
    response = await phi.http.post(
        "/fhir/", json=bundle("transaction", post(patient())), headers=headers
    )
    assert response.status_code == 200, response.text
    entry = response.json()["entry"][0]
    assert entry["resource"]["resourceType"] == "Patient"
    assert entry["resource"]["meta"]["versionId"] == "1"
    assert entry["fullUrl"].endswith(f"/Patient/{entry['resource']['id']}")


async def test_one_bad_entry_stores_nothing(phi: PhiHarness) -> None:
    body = bundle(
        "transaction",
        put(patient(id="kept-1")),
        post(observation("Patient/kept-1", status="banana")),
    )
    response = await _send(phi, body)

    assert response.status_code == 400
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["expression"] == ["Bundle.entry[1]"]
    assert "banana" not in response.text
    assert await status_of(phi, "Patient/kept-1") == 404
    failures = [r for r in await audit_records(phi, "fhir.transaction") if r.outcome == "failure"]
    assert len(failures) == 1


async def test_a_failing_read_after_writes_rolls_them_back(phi: PhiHarness) -> None:
    body = bundle(
        "transaction", post(patient(), urn()), put(patient(id="kept-2")), get("Patient/not-there")
    )
    response = await _send(phi, body)
    assert response.status_code == 404
    assert response.json()["issue"][0]["expression"] == ["Bundle.entry[2]"]
    assert await status_of(phi, "Patient/kept-2") == 404


async def test_unknown_placeholder_is_refused(phi: PhiHarness) -> None:
    response = await _send(phi, bundle("transaction", post(observation(urn()))))
    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == ["Bundle.entry[0]"]


async def test_bundle_shape_is_checked(phi: PhiHarness) -> None:
    cases: list[Any] = [
        patient(),
        {"resourceType": "Bundle", "type": "document", "entry": []},
        bundle("transaction", {"resource": patient()}),
        bundle(
            "transaction",
            {"resource": patient(), "request": {"method": "POST", "url": "Observation"}},
        ),
        bundle("transaction", *[get("Patient/x")] * (phi.settings.max_bundle_entries + 1)),
        [1, 2],
    ]
    for case in cases:
        response = await _send(phi, case)
        assert response.status_code == 400, response.text
        assert response.json()["resourceType"] == "OperationOutcome"
    unsupported = await _send(
        phi, bundle("transaction", {"request": {"method": "POST", "url": "ValueSet/$lookup"}})
    )
    assert unsupported.status_code == 404


async def test_hl7_example_transaction(phi: PhiHarness) -> None:
    example = json.loads((HL7 / "Bundle-bundle-transaction.json").read_text())

    # As published it asks for ValueSet/$lookup, which this store does not offer: nothing happens.
    refused = await _send(phi, example)
    assert refused.status_code == 404
    assert await status_of(phi, "Patient/123") == 404

    # Without the operation, and with the resources it expects to exist, it goes through.
    for resource_id in ("123a", "123a", "234", "12334"):
        await phi.http.put(
            f"/fhir/Patient/{resource_id}", json=patient(id=resource_id), headers=phi.headers()
        )
    runnable = copy.deepcopy(example)
    runnable["entry"] = [e for e in runnable["entry"] if "$" not in e["request"]["url"]]
    response = await _send(phi, runnable)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["type"] == "transaction-response"
    assert statuses(body) == ["201", "201", "201", "201", "200", "204", "204", "200", "200"]
    assert await status_of(phi, "Patient/123") == 200
    assert await status_of(phi, "Patient/234") == 410
    assert (await _read(phi, "Patient/123a"))["meta"]["versionId"] == "3"
    assert body["entry"][7]["resource"]["type"] == "searchset"
    assert body["entry"][8]["resource"]["id"] == "12334"


async def test_stale_if_match_fails_the_transaction(phi: PhiHarness) -> None:
    await phi.http.put("/fhir/Patient/v1", json=patient(id="v1"), headers=phi.headers())
    response = await _send(
        phi,
        bundle(
            "transaction",
            post(patient(), urn()),
            put(patient(id="v1", active=True), if_match='W/"7"'),
        ),
    )
    assert response.status_code == 412
    assert "active" not in await _read(phi, "Patient/v1")


async def test_if_none_exist_points_at_the_existing_resource(phi: PhiHarness) -> None:
    existing = await phi.create(patient(identifier=[{"system": "urn:mrn", "value": "m-1"}]))
    person = urn()
    body = bundle(
        "transaction",
        post(
            patient(identifier=[{"system": "urn:mrn", "value": "m-1"}]),
            person,
            "identifier=urn:mrn|m-1",
        ),
        post(observation(person)),
    )
    response = await _send(phi, body)

    assert response.status_code == 200, response.text
    first, second = response.json()["entry"]
    assert first["response"]["status"].startswith("200")
    assert located_id(first) == existing["id"]
    stored = await _read(phi, f"Observation/{located_id(second)}")
    assert stored["subject"]["reference"] == f"Patient/{existing['id']}"


async def test_if_none_exist_creates_when_nothing_matches(phi: PhiHarness) -> None:
    body = bundle(
        "transaction", post(organization("org-new"), urn(), f"identifier={SYNTHEA}|org-new")
    )
    response = await _send(phi, body)
    assert response.status_code == 200, response.text
    assert statuses(response.json()) == ["201"]


async def test_conditional_references_are_resolved(phi: PhiHarness) -> None:
    clinic = await phi.create(organization("org-1"))
    npi = "http://hl7.org/fhir/sid/us-npi"
    doctor = await phi.create(
        {"resourceType": "Practitioner", "identifier": [{"system": npi, "value": "42"}]}
    )
    person = urn()
    encounter = {
        "resourceType": "Encounter",
        "status": "finished",
        "subject": {"reference": person},
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "serviceProvider": {"reference": f"Organization?identifier={SYNTHEA}|org-1"},
        "participant": [{"individual": {"reference": f"Practitioner?identifier={npi}|42"}}],
    }
    twice = {
        **encounter,
        "serviceProvider": {"reference": f"Organization?identifier={SYNTHEA}|org-1"},
    }
    body = bundle("transaction", post(patient(), person), post(encounter), post(twice))
    response = await _send(phi, body)

    assert response.status_code == 200, response.text
    for entry in response.json()["entry"][1:]:
        stored = await _read(phi, f"Encounter/{located_id(entry)}")
        assert stored["serviceProvider"]["reference"] == f"Organization/{clinic['id']}"
        assert stored["participant"][0]["individual"]["reference"] == f"Practitioner/{doctor['id']}"


async def test_conditional_reference_must_match_exactly_one(phi: PhiHarness) -> None:
    await phi.create(organization("twin"))
    await phi.create(organization("twin"))
    for value, status in (("nobody", 404), ("twin", 412)):
        encounter = {
            "resourceType": "Encounter",
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "serviceProvider": {"reference": f"Organization?identifier={SYNTHEA}|{value}"},
        }
        response = await _send(
            phi, bundle("transaction", put(patient(id=f"p-{value}")), post(encounter))
        )
        assert response.status_code == status, response.text
        assert response.json()["issue"][0]["expression"] == ["Bundle.entry[1]"]
        assert await status_of(phi, f"Patient/p-{value}") == 404


async def test_patient_token_cannot_write_into_another_compartment(phi: PhiHarness) -> None:
    await phi.http.put("/fhir/Patient/own", json=patient(id="own"), headers=phi.headers())
    await phi.http.put("/fhir/Patient/other", json=patient(id="other"), headers=phi.headers())
    scope = "patient/*.cruds"

    escaping = bundle(
        "transaction", post(observation("Patient/own")), post(observation("Patient/other"))
    )
    refused = await _send(phi, escaping, scope, patient="own")
    assert refused.status_code == 403
    assert refused.json()["issue"][0]["expression"] == ["Bundle.entry[1]"]

    moved = bundle("transaction", put(observation("Patient/other", id="obs-x")))
    assert (await _send(phi, moved, scope, patient="own")).status_code == 403
    assert await status_of(phi, "Observation/obs-x") == 404

    allowed = await _send(
        phi, bundle("transaction", post(observation("Patient/own"))), scope, patient="own"
    )
    assert allowed.status_code == 200, allowed.text


async def test_transaction_is_audited(phi: PhiHarness) -> None:
    person = urn()
    response = await _send(
        phi, bundle("transaction", post(patient(), person), post(observation(person)))
    )
    patient_id = located_id(response.json()["entry"][0])

    [record] = await audit_records(phi, "fhir.transaction")
    assert record.outcome == "success"
    assert record.details["entries"] == 2
    assert record.patient_ids == [patient_id]
    creates = await audit_records(phi, "fhir.create")
    assert sorted(r.resource_type or "" for r in creates) == ["Observation", "Patient"]
    assert all(r.patient_ids == [patient_id] for r in creates)


async def test_oid_placeholders_and_outcome_preference(phi: PhiHarness) -> None:
    person = "urn:oid:1.2.3.4.5"
    headers = {**phi.headers(), "Prefer": "return=OperationOutcome"}
    body = bundle("transaction", post(patient(), person), post(observation(person)))
    response = await phi.http.post("/fhir", json=body, headers=headers)
    assert response.status_code == 200, response.text
    first, second = response.json()["entry"]
    assert first["response"]["outcome"]["resourceType"] == "OperationOutcome"
    assert "resource" not in first
    stored = await _read(phi, f"Observation/{located_id(second)}")
    assert stored["subject"]["reference"] == f"Patient/{located_id(first)}"
