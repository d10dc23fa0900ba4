"""Every FHIR route of the OpenAPI document writes an audit record, and the trail is tamper-evident.

The walk reads ``app.openapi()["paths"]``, so a route added later is walked too (or
fails the test until it says how to call it). Exempt, by design: the public
CapabilityStatement and SMART configuration (no PHI), and ``/fhir/AuditEvent``
(reading the trail is not audited: it would append to what it pages through).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.staticfiles import StaticFiles

from medmesh.phi.config import PhiSettings
from medmesh.platform.audit import verify_chain
from medmesh.platform.testing import serve_app
from tests.phi.conftest import PhiHarness
from tests.phi.resources.support import audit_records, observation, patient

EXEMPT = {
    ("GET", "/fhir/metadata"),
    ("GET", "/fhir/.well-known/smart-configuration"),
    ("GET", "/fhir/AuditEvent"),
    ("GET", "/fhir/AuditEvent/{event_id}"),
}
_PARAM = re.compile(r"\{([^}]+)\}")


@pytest.fixture
async def exports(tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    """A folder served over HTTP, where ``$import`` may fetch from."""
    folder = tmp_path / "exports"
    folder.mkdir()
    app = Starlette()
    app.mount("/exports", StaticFiles(directory=folder))
    async with serve_app(app) as base:
        yield f"{base}/exports/", folder


@pytest.fixture
def phi_settings(phi_settings: PhiSettings, exports: tuple[str, Path]) -> PhiSettings:
    return phi_settings.model_copy(update={"import_url_prefixes": exports[0]})


def _fill(path: str, patient_id: str, job_id: str = "") -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "job_id":
            return job_id
        if "type" in name:
            return "Patient"
        if "version" in name:
            return "1"
        if name.endswith("id"):
            return patient_id
        raise AssertionError(f"the walk does not know how to fill {{{name}}} in {path}")

    return _PARAM.sub(value, path)


def _kickoff(url: str) -> dict[str, Any]:
    return {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "inputFormat", "valueCode": "application/fhir+ndjson"},
            {
                "name": "input",
                "part": [
                    {"name": "type", "valueCode": "Patient"},
                    {"name": "url", "valueUri": url},
                ],
            },
        ],
    }


def _request(method: str, path: str, patient_id: str, exports: str = "") -> dict[str, Any]:
    """The body (if any) that makes this call succeed."""
    if method == "POST" and path == "/fhir/$import":
        return {"json": _kickoff(exports + "Patient.ndjson")}
    if method == "PUT":
        return {"json": patient("Walker", id=patient_id)}
    if method == "POST" and path == "/fhir":
        return {
            "json": {
                "resourceType": "Bundle",
                "type": "transaction",
                "entry": [
                    {
                        "fullUrl": "urn:uuid:0b7e1c1e-6f3c-4d0c-9a55-2f3a4b7c9d10",
                        "resource": patient("Bundled"),
                        "request": {"method": "POST", "url": "Patient"},
                    }
                ],
            }
        }
    if method == "POST" and path.endswith("/_search"):
        return {
            "content": f"_id={patient_id}".encode(),
            "headers": {"Content-Type": "application/x-www-form-urlencoded"},
        }
    if method == "POST":
        return {"json": patient("Posted")}
    return {}


async def test_every_fhir_route_writes_an_audit_record(
    phi: PhiHarness, exports: tuple[str, Path]
) -> None:
    patient_id = (await phi.create(patient("Walker")))["id"]
    await phi.create(observation(patient_id))
    (exports[1] / "Patient.ndjson").write_bytes(orjson.dumps(patient("Imported")))
    kicked = await phi.http.post(
        "/fhir/$import", json=_kickoff(exports[0] + "Patient.ndjson"), headers=phi.headers()
    )
    job_id = kicked.headers["content-location"].rsplit("/", 1)[1]
    operations = [
        (method.upper(), path)
        for path, methods in phi.app.openapi()["paths"].items()
        if path.startswith("/fhir")
        for method in methods
    ]
    assert set(operations) >= EXEMPT
    walked = [op for op in operations if op not in EXEMPT]
    # Deleting last, so that every other route still finds the resource.
    walked.sort(key=lambda op: op[0] == "DELETE")
    assert len(walked) >= 10
    for method, path in walked:
        before = await audit_records(phi.app)
        extra = _request(method, path, patient_id, exports[0])
        headers = {**phi.headers(), **extra.pop("headers", {})}
        url = _fill(path, patient_id, job_id)
        response = await phi.http.request(method, url, headers=headers, **extra)
        assert response.status_code < 300, (
            f"{method} {url}: {response.status_code} {response.text[:300]}"
        )
        after = await audit_records(phi.app)
        new = after[len(before) :]
        assert new, f"{method} {path} wrote no audit record"
        assert all(record.outcome == "success" and record.actor == "user-1" for record in new), (
            method,
            path,
        )
        # An instance route: the record names its patient (an import job is no patient's).
        if re.search(r"\{\w*id\}", path) and path != "/fhir/$import-poll-status/{job_id}":
            assert any(patient_id in record.patient_ids for record in new), (
                f"{method} {path} names no patient"
            )


async def test_refusals_are_audited_too(phi: PhiHarness) -> None:
    patient_id = (await phi.create(patient("Walker")))["id"]
    outsider = phi.headers("patient/*.rs", patient="someone-else", sub="outsider")
    for url in (f"/fhir/Patient/{patient_id}", f"/fhir/Patient/{patient_id}/_history/1"):
        assert (await phi.http.get(url, headers=outsider)).status_code == 403
    records = await audit_records(phi.app, actor="outsider")
    assert [(r.outcome, r.patient_ids) for r in records] == [("failure", [patient_id])] * 2


async def test_audit_verify_passes_then_catches_an_edited_record(phi: PhiHarness) -> None:
    patient_id = (await phi.create(patient("Walker")))["id"]
    for _ in range(3):
        await phi.http.get(f"/fhir/Patient/{patient_id}", headers=phi.headers())
    database = phi.app.state.audit.database
    report = await verify_chain(database, keys=phi.app.state.audit.keys)
    assert report.ok
    assert report.records == 4

    async with database.engine.begin() as conn:
        await conn.execute(text("UPDATE audit_log SET actor = 'somebody-else' WHERE seq = 2"))
    report = await verify_chain(database, keys=phi.app.state.audit.keys)
    assert not report.ok
    assert report.first_bad_seq == 2
