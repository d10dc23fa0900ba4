"""Test data of the search tests."""

from __future__ import annotations

from typing import Any

from tests.phi.conftest import PhiHarness

LOINC = "http://loinc.org"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
MRN = "http://hospital.example/mrn"


def patient(
    family: str,
    given: str = "Alex",
    *,
    birth: str = "1970-01-01",
    gender: str = "female",
    mrn: str | None = None,
    phone: str | None = None,
    email: str | None = None,
    postal: str | None = None,
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "name": [{"family": family, "given": [given]}],
        "gender": gender,
        "birthDate": birth,
    }
    if mrn:
        resource["identifier"] = [{"system": MRN, "value": mrn}]
    telecom = [{"system": "phone", "value": phone}] if phone else []
    telecom += [{"system": "email", "value": email}] if email else []
    if telecom:
        resource["telecom"] = telecom
    if postal:
        resource["address"] = [{"city": "Springfield", "postalCode": postal}]
    return resource


def observation(
    patient_id: str,
    code: str = "8867-4",
    *,
    category: str = "vital-signs",
    when: str = "2020-05-10T10:00:00Z",
    encounter: str | None = None,
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{"system": CATEGORY, "code": category}]}],
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectiveDateTime": when,
    }
    if encounter:
        resource["encounter"] = {"reference": f"Encounter/{encounter}"}
    return resource


async def search(
    phi: PhiHarness, query: str, scope: str = "system/*.rs", **claims: Any
) -> dict[str, Any]:
    response = await phi.http.get(f"/fhir/{query}", headers=phi.headers(scope, **claims))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    body: dict[str, Any] = response.json()
    assert body["resourceType"] == "Bundle"
    return body


def ids(bundle: dict[str, Any], mode: str = "match") -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == mode]


def typed_ids(bundle: dict[str, Any], mode: str) -> set[str]:
    return {
        f"{e['resource']['resourceType']}/{e['resource']['id']}"
        for e in bundle.get("entry", [])
        if e["search"]["mode"] == mode
    }


def link(bundle: dict[str, Any], relation: str) -> str | None:
    for item in bundle.get("link", []):
        if item["relation"] == relation:
            url: str = item["url"]
            return url
    return None
