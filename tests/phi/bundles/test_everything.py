"""GET /fhir/Patient/{id}/$everything."""

from __future__ import annotations

from typing import Any

from tests.phi.bundles.builders import (
    audit_records,
    bundle,
    located_id,
    observation,
    patient,
    post,
    urn,
)
from tests.phi.conftest import PhiHarness


async def _record(phi: PhiHarness, observations: int = 3) -> dict[str, str]:
    """A patient with an encounter, ``observations`` Observations, a condition and a practitioner."""
    person, visit, doctor = urn(), urn(), urn()
    practitioner = {"resourceType": "Practitioner", "name": [{"family": "Who"}]}
    encounter = {
        "resourceType": "Encounter",
        "status": "finished",
        "subject": {"reference": person},
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "participant": [{"individual": {"reference": doctor}}],
    }
    condition = {
        "resourceType": "Condition",
        "subject": {"reference": person},
        "code": {"text": "flu"},
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                        "code": "problem-list-item",
                    }
                ]
            }
        ],
    }
    entries = [
        post(patient(), person),
        post(practitioner, doctor),
        post(encounter, visit),
        post(condition),
    ]
    entries += [
        post(observation(person, encounter={"reference": visit})) for _ in range(observations)
    ]
    response = await phi.http.post(
        "/fhir", json=bundle("transaction", *entries), headers=phi.headers()
    )
    assert response.status_code == 200, response.text
    ids = [located_id(e) for e in response.json()["entry"]]
    return {"patient": ids[0], "practitioner": ids[1], "encounter": ids[2], "condition": ids[3]}


async def _everything(phi: PhiHarness, url: str, scope: str = "system/*.rs", **claims: Any) -> Any:
    return await phi.http.get(url, headers=phi.headers(scope, **claims))


def _keys(page: dict[str, Any], mode: str = "match") -> list[str]:
    return [
        f"{e['resource']['resourceType']}/{e['resource']['id']}"
        for e in page["entry"]
        if e["search"]["mode"] == mode
    ]


async def test_everything_holds_the_compartment_and_what_it_references(phi: PhiHarness) -> None:
    mine = await _record(phi)
    other = await _record(phi)
    response = await _everything(phi, f"/fhir/Patient/{mine['patient']}/$everything")

    assert response.status_code == 200, response.text
    page = response.json()
    assert page["type"] == "searchset"
    matched = _keys(page)
    assert f"Patient/{mine['patient']}" in matched
    assert f"Encounter/{mine['encounter']}" in matched
    assert f"Condition/{mine['condition']}" in matched
    assert sum(1 for k in matched if k.startswith("Observation/")) == 3
    assert len(matched) == 6
    assert not any(other["patient"] in str(e["resource"]) for e in page["entry"])
    assert _keys(page, "include") == [f"Practitioner/{mine['practitioner']}"]
    [record] = await audit_records(phi, "fhir.everything")
    assert record.patient_ids == [mine["patient"]]


async def test_everything_pages_with_a_cursor(phi: PhiHarness) -> None:
    mine = await _record(phi, observations=7)
    url: str | None = f"/fhir/Patient/{mine['patient']}/$everything?_count=3"
    seen: list[str] = []
    pages = 0
    while url:
        response = await _everything(phi, url)
        assert response.status_code == 200, response.text
        page = response.json()
        seen += _keys(page)
        pages += 1
        url = next((link["url"] for link in page["link"] if link["relation"] == "next"), None)
    assert pages == 4
    assert len(seen) == len(set(seen)) == 10


async def test_everything_type_and_since_filters(phi: PhiHarness) -> None:
    mine = await _record(phi)
    base = f"/fhir/Patient/{mine['patient']}/$everything"
    only = (await _everything(phi, f"{base}?_type=Observation,Condition")).json()
    assert {k.split("/")[0] for k in _keys(only)} == {"Observation", "Condition"}
    later = (await _everything(phi, f"{base}?_since=2999-01-01T00:00:00Z")).json()
    assert later["entry"] == []
    for bad in ("_type=Nonsense", "_since=yesterday", "_count=x", "_cursor=%%%", "foo=bar"):
        response = await _everything(phi, f"{base}?{bad}")
        assert response.status_code == 400, bad
        assert response.json()["resourceType"] == "OperationOutcome"


async def test_patient_token_reaches_only_its_own_record(phi: PhiHarness) -> None:
    mine = await _record(phi)
    other = await _record(phi)
    own = await _everything(
        phi, f"/fhir/Patient/{mine['patient']}/$everything", "patient/*.rs", patient=mine["patient"]
    )
    assert own.status_code == 200
    assert len(_keys(own.json())) == 6
    refused = await _everything(
        phi,
        f"/fhir/Patient/{other['patient']}/$everything",
        "patient/*.rs",
        patient=mine["patient"],
    )
    assert refused.status_code == 403
    assert refused.json()["resourceType"] == "OperationOutcome"


async def test_types_the_caller_may_not_read_are_left_out(phi: PhiHarness) -> None:
    mine = await _record(phi)
    scope = "user/Patient.rs user/Observation.rs"
    response = await _everything(phi, f"/fhir/Patient/{mine['patient']}/$everything", scope)
    assert response.status_code == 200
    assert {k.split("/")[0] for k in _keys(response.json())} == {"Patient", "Observation"}
    assert _keys(response.json(), "include") == []
    assert (
        await _everything(
            phi, f"/fhir/Patient/{mine['patient']}/$everything", "user/Observation.rs"
        )
    ).status_code == 403


async def test_unknown_patient_is_not_found(phi: PhiHarness) -> None:
    response = await _everything(phi, "/fhir/Patient/nobody/$everything")
    assert response.status_code == 404
