"""Bundles, entries and resources the bundle tests send."""

from __future__ import annotations

import uuid
from typing import Any

from medmesh.phi.main import create_app  # noqa: F401 - the app module must import before the tests run
from medmesh.platform.audit import AuditEntry, list_records
from tests.phi.conftest import PhiHarness

SYNTHEA = "https://github.com/synthetichealth/synthea"


def urn() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def bundle(kind: str, *entries: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def post(
    resource: dict[str, Any], full_url: str | None = None, if_none_exist: str | None = None
) -> dict[str, Any]:
    request: dict[str, Any] = {"method": "POST", "url": resource["resourceType"]}
    if if_none_exist:
        request["ifNoneExist"] = if_none_exist
    entry: dict[str, Any] = {"resource": resource, "request": request}
    if full_url:
        entry["fullUrl"] = full_url
    return entry


def put(
    resource: dict[str, Any], url: str | None = None, if_match: str | None = None
) -> dict[str, Any]:
    request: dict[str, Any] = {
        "method": "PUT",
        "url": url or f"{resource['resourceType']}/{resource['id']}",
    }
    if if_match:
        request["ifMatch"] = if_match
    return {"resource": resource, "request": request}


def get(url: str) -> dict[str, Any]:
    return {"request": {"method": "GET", "url": url}}


def delete(url: str) -> dict[str, Any]:
    return {"request": {"method": "DELETE", "url": url}}


def patient(family: str = "Doe", **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "name": [{"family": family, "given": ["Jo"]}],
        "gender": "female",
        **extra,
    }


def observation(subject: str, status: str = "final", **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": status,
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": subject},
        "valueQuantity": {
            "value": 72,
            "unit": "/min",
            "system": "http://unitsofmeasure.org",
            "code": "/min",
        },
        **extra,
    }


def organization(value: str, name: str = "Clinic") -> dict[str, Any]:
    return {
        "resourceType": "Organization",
        "identifier": [{"system": SYNTHEA, "value": value}],
        "name": name,
    }


def located_id(entry: dict[str, Any]) -> str:
    """The id in a response entry's ``location`` (``Type/id/_history/n``)."""
    location: str = entry["response"]["location"]
    return location.split("/")[1]


def statuses(response_bundle: dict[str, Any]) -> list[str]:
    return [e["response"]["status"].split(" ")[0] for e in response_bundle["entry"]]


async def audit_records(phi: PhiHarness, action: str) -> list[AuditEntry]:
    return await list_records(phi.app.state.audit.database, action=action, limit=1000)


async def status_of(phi: PhiHarness, url: str) -> int:
    response = await phi.http.get(f"/fhir/{url}", headers=phi.headers())
    return response.status_code
