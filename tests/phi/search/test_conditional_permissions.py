"""Every conditional operation is a search by the caller: without search on the type (and on
every chained type) it is refused before anything is matched, so its outcome cannot tell
whether a resource exists — issue #13, finding 3."""

from __future__ import annotations

from typing import Any

from tests.phi.conftest import PhiHarness
from tests.phi.resources.support import consent, stored_rows
from tests.phi.search.support import MRN, observation, patient
from tests.phi.search.test_chain_permissions import refusal

SSN = f"{MRN}|SSN-999-00-1111"


async def _create(phi: PhiHarness, resource: dict[str, Any], scope: str, if_none_exist: str) -> Any:
    headers = {**phi.headers(scope), "If-None-Exist": if_none_exist}
    return await phi.http.post(f"/fhir/{resource['resourceType']}", json=resource, headers=headers)


async def test_if_none_exist_needs_search_on_every_type_it_reads(phi: PhiHarness) -> None:
    b = (await phi.create(patient("Exists", mrn="SSN-999-00-1111")))["id"]
    obs = (await phi.create(observation(b)))["id"]
    before = await stored_rows(phi.app)

    # The same 403 whether or not the Patient exists, and nothing is written.
    for query in (f"identifier={SSN}", f"identifier={MRN}|nobody"):
        response = await _create(phi, patient("Probe"), "user/Patient.c", query)
        assert response.status_code == 403, query
        assert response.json() == refusal("Patient"), query
    for query in (f"patient.identifier={SSN}", f"patient.identifier={MRN}|nobody"):
        response = await _create(phi, observation(b), "user/Observation.c", query)
        assert response.status_code == 403, query
        assert response.json() == refusal("Observation"), query
        response = await _create(phi, observation(b), "user/Observation.crs", query)
        assert response.status_code == 403, query
        assert response.json() == refusal("Patient"), query
    assert await stored_rows(phi.app) == before

    # With search on both types the conditional create works as before.
    scope = "user/Observation.crs user/Patient.s"
    found = await _create(phi, observation(b), scope, f"patient.identifier={SSN}")
    assert found.status_code == 200
    assert found.json()["id"] == obs
    assert await stored_rows(phi.app) == before


async def test_a_match_the_caller_cannot_see_does_not_decide(phi: PhiHarness) -> None:
    denied = (await phi.create(patient("Private", mrn="SSN-999-00-1111")))["id"]
    await phi.create(consent(denied))
    scope = "user/Patient.crs"
    # A Consent-denied Patient with that SSN exists, yet the clinician's conditional create
    # answers as if none did (as for an SSN nobody has).
    for query in (f"identifier={SSN}", f"identifier={MRN}|nobody"):
        headers = {**phi.headers(scope, roles=["clinician"]), "If-None-Exist": query}
        response = await phi.http.post("/fhir/Patient", json=patient("Probe"), headers=headers)
        assert response.status_code == 201, query
        assert response.json()["id"] != denied
    # A user/Patient.c token is refused before anything is matched.
    response = await _create(phi, patient("Probe"), "user/Patient.c", f"identifier={SSN}")
    assert response.status_code == 403
    assert response.json() == refusal("Patient")


def _entry(request: dict[str, Any], resource: dict[str, Any] | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"request": request}
    if resource is not None:
        entry["resource"] = resource
    return entry


async def test_bundle_conditionals_need_search(phi: PhiHarness) -> None:
    b = (await phi.create(patient("Exists", mrn="SSN-999-00-1111")))["id"]
    before = await stored_rows(phi.app)
    scope = "user/Patient.cud user/Observation.c"
    probe = {"resourceType": "Patient", "name": [{"family": "Probe"}], "gender": "female"}
    conditional_reference = {
        **observation(b),
        "subject": {"reference": f"Patient?identifier={SSN}"},
    }
    batch = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            _entry({"method": "POST", "url": "Patient", "ifNoneExist": f"identifier={SSN}"}, probe),
            _entry({"method": "PUT", "url": f"Patient?identifier={SSN}"}, probe),
            _entry({"method": "DELETE", "url": f"Patient?identifier={SSN}"}),
            _entry({"method": "POST", "url": "Observation"}, conditional_reference),
        ],
    }
    response = await phi.http.post("/fhir", json=batch, headers=phi.headers(scope))
    assert response.status_code == 200
    entries = response.json()["entry"]
    assert [e["response"]["status"] for e in entries] == ["403 Forbidden"] * 4
    diagnostics = refusal("Patient")["issue"][0]["diagnostics"]
    for i, entry in enumerate(entries):
        assert entry["response"]["outcome"]["issue"] == [
            {
                "severity": "error",
                "code": "forbidden",
                "diagnostics": f"Bundle.entry[{i}]: {diagnostics}",
                "expression": [f"Bundle.entry[{i}]"],
            }
        ], i
    assert await stored_rows(phi.app) == before
    read = await phi.http.get(f"/fhir/Patient/{b}", headers=phi.headers("system/*.rs"))
    assert read.status_code == 200
    assert read.json()["name"][0]["family"] == "Exists"

    transaction = {**batch, "type": "transaction", "entry": batch["entry"][:1]}
    refused = await phi.http.post("/fhir", json=transaction, headers=phi.headers(scope))
    assert refused.status_code == 403
    assert refused.json()["issue"][0]["diagnostics"] == f"Bundle.entry[0]: {diagnostics}"
    assert await stored_rows(phi.app) == before
