"""``POST /fhir/$import``: NDJSON fetched from listed URLs, a job polled to its report."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from starlette.applications import Starlette
from starlette.staticfiles import StaticFiles

from medmesh.phi.config import PhiSettings
from medmesh.platform.testing import serve_app
from tests.phi.bundles.builders import audit_records
from tests.phi.conftest import PhiHarness


def _patient(pid: str) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "name": [{"family": "Ulm"}]}


def _observation(oid: str, patient: str, status: str = "final") -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": status,
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": f"Patient/{patient}"},
    }


@pytest.fixture
async def files(tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    folder = tmp_path / "exports"
    folder.mkdir()
    app = Starlette()
    app.mount("/exports", StaticFiles(directory=folder))
    async with serve_app(app) as base:
        yield f"{base}/exports/", folder


@pytest.fixture
def phi_settings(phi_settings: PhiSettings, files: tuple[str, Path]) -> PhiSettings:
    return phi_settings.model_copy(update={"import_url_prefixes": files[0]})


def _kickoff(*inputs: tuple[str, str]) -> dict[str, Any]:
    return {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "inputFormat", "valueCode": "application/fhir+ndjson"},
            *(
                {
                    "name": "input",
                    "part": [
                        {"name": "type", "valueCode": kind},
                        {"name": "url", "valueUri": url},
                    ],
                }
                for kind, url in inputs
            ),
        ],
    }


def _ndjson(path: Path, *resources: dict[str, Any] | bytes) -> None:
    path.write_bytes(
        b"\n".join(r if isinstance(r, bytes) else orjson.dumps(r) for r in resources) + b"\n"
    )


async def _poll(phi: PhiHarness, location: str) -> dict[str, Any]:
    path = location.removeprefix("http://phi.test")
    await phi.app.state.phi.imports.wait()
    response = await phi.http.get(path, headers=phi.headers())
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_import_stores_the_files_and_reports_counts_and_rejected_lines(
    phi: PhiHarness, files: tuple[str, Path]
) -> None:
    base, folder = files
    _ndjson(folder / "Patient.ndjson", _patient("p1"), _patient("p2"))
    _ndjson(
        folder / "Observation.ndjson",
        _observation("o1", "p1"),
        _observation("o2", "p2", status="bogus-code"),
        b"[]",
    )
    response = await phi.http.post(
        "/fhir/$import",
        json=_kickoff(
            ("Patient", base + "Patient.ndjson"), ("Observation", base + "Observation.ndjson")
        ),
        headers=phi.headers(),
    )
    assert response.status_code == 202, response.text
    location = response.headers["content-location"]
    assert location.startswith("http://phi.test/fhir/$import-poll-status/")

    report = await _poll(phi, location)

    assert report["status"] == "completed"
    assert [(o["type"], o["count"], o["rejected"], o["lines"]) for o in report["output"]] == [
        ("Patient", 2, 0, 2),
        ("Observation", 1, 2, 3),
    ]
    assert report["outcome"]["resourceType"] == "OperationOutcome"
    assert [i["diagnostics"] for i in report["outcome"]["issue"]] == [
        f"{base}Observation.ndjson line 2: Observation.status: not a code of its required value set",
        f"{base}Observation.ndjson line 3: not a JSON object",
    ]
    read = await phi.http.get("/fhir/Observation/o1", headers=phi.headers())
    assert read.status_code == 200
    creates = await audit_records(phi, "fhir.create")
    assert sorted(r.resource_id or "" for r in creates) == ["o1", "p1", "p2"]
    assert {r.details["import_job"] for r in creates} == {location.rsplit("/", 1)[1]}
    kicks = await audit_records(phi, "fhir.import")
    assert [(k.outcome, k.details.get("stored")) for k in kicks] == [
        ("success", None),
        ("success", 3),
    ]


async def test_an_unreadable_input_fails_the_job_and_is_named(
    phi: PhiHarness, files: tuple[str, Path]
) -> None:
    base, _ = files
    response = await phi.http.post(
        "/fhir/$import", json=_kickoff(("Patient", base + "missing.ndjson")), headers=phi.headers()
    )
    report = await _poll(phi, response.headers["content-location"])

    assert report["status"] == "failed"
    assert report["outcome"]["issue"] == [
        {
            "severity": "error",
            "code": "exception",
            "diagnostics": "input 1 (Patient) could not be read: HTTP 404",
        }
    ]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"resourceType": "Bundle"}, 400, "the body of $import is a Parameters resource"),
        (
            {"resourceType": "Parameters", "parameter": []},
            400,
            "$import needs at least one input (type and url)",
        ),
        (
            _kickoff(("Patient", "https://elsewhere.example/Patient.ndjson")),
            400,
            "Parameters.parameter[1]: url is not under a location this server imports from "
            "(MEDMESH_PHI_IMPORT_URL_PREFIXES)",
        ),
        (
            _kickoff(("Nonsense", "https://elsewhere.example/x.ndjson")),
            400,
            "Parameters.parameter[1]: type is not a resource type stored here",
        ),
    ],
)
async def test_bad_kick_offs_are_refused_and_start_nothing(
    phi: PhiHarness, body: dict[str, Any], status: int, message: str
) -> None:
    response = await phi.http.post("/fhir/$import", json=body, headers=phi.headers())

    assert response.status_code == status
    assert response.json()["issue"][0]["diagnostics"] == message
    assert phi.app.state.phi.imports._tasks == set()


async def test_a_token_that_cannot_create_the_type_is_refused(
    phi: PhiHarness, files: tuple[str, Path]
) -> None:
    base, _ = files
    response = await phi.http.post(
        "/fhir/$import",
        json=_kickoff(("Patient", base + "Patient.ndjson")),
        headers=phi.headers("system/Observation.cu"),
    )
    assert response.status_code == 403
    [refusal] = await audit_records(phi, "fhir.import")
    assert (refusal.outcome, refusal.details["reason"]) == ("failure", "forbidden")


async def test_only_the_caller_that_kicked_it_off_sees_the_job(
    phi: PhiHarness, files: tuple[str, Path]
) -> None:
    base, folder = files
    _ndjson(folder / "Patient.ndjson", _patient("p9"))
    response = await phi.http.post(
        "/fhir/$import", json=_kickoff(("Patient", base + "Patient.ndjson")), headers=phi.headers()
    )
    path = response.headers["content-location"].removeprefix("http://phi.test")
    await asyncio.wait_for(phi.app.state.phi.imports.wait(), 60)

    other = await phi.http.get(path, headers=phi.headers(sub="someone-else"))
    assert other.status_code == 404
    unknown = await phi.http.get("/fhir/$import-poll-status/nope", headers=phi.headers())
    assert unknown.status_code == 404


async def test_an_unfinished_job_answers_202_then_resumes_after_its_last_chunk(
    phi: PhiHarness, files: tuple[str, Path]
) -> None:
    """What a killed service leaves: a job row whose first line is settled (its chunk
    committed). Polling it says 202; the next start goes on from line 2."""
    from medmesh.phi.bulk_import.models import ImportJobRow
    from medmesh.phi.bulk_import.progress import FileProgress
    from medmesh.platform.db import utcnow

    base, folder = files
    url = base + "Patient.ndjson"
    _ndjson(folder / "Patient.ndjson", _patient("settled"), _patient("r2"), _patient("r3"))
    jobs = phi.app.state.phi.imports
    now = utcnow()
    async with phi.app.state.database.unit_of_work() as session:
        session.add(
            ImportJobRow(
                id="job-1",
                status="in-progress",
                created_at=now,
                updated_at=now,
                subject="test-subject",
                client_id="test-client",
                roles="",
                scope="system/*.cruds",
                patient=None,
                ip="198.51.100.20",
                base_url="http://phi.test/fhir",
                inputs=[{"type": "Patient", "url": url}],
                progress=[FileProgress(url, "Patient", lines=1, stored=1).to_json()],
                errors=[],
            )
        )
    headers = phi.headers(sub="test-subject", client_id="test-client")
    running = await phi.http.get("/fhir/$import-poll-status/job-1", headers=headers)
    assert running.status_code == 202
    assert running.headers["x-progress"] == "0 of 1 files, 1 resources stored"

    await jobs.resume()
    await asyncio.wait_for(jobs.wait(), 60)

    done = await phi.http.get("/fhir/$import-poll-status/job-1", headers=headers)
    assert [(o["count"], o["lines"]) for o in done.json()["output"]] == [(3, 3)]
    assert (await phi.http.get("/fhir/Patient/settled", headers=headers)).status_code == 404
    assert (await phi.http.get("/fhir/Patient/r3", headers=headers)).status_code == 200


async def test_the_capability_statement_lists_import(phi: PhiHarness) -> None:
    response = await phi.http.get("/fhir/metadata")

    assert response.status_code == 200
    assert response.json()["rest"][0]["operation"] == [
        {
            "name": "import",
            "definition": "https://github.com/smart-on-fhir/bulk-import/blob/master/import.md",
            "documentation": "NDJSON from listed URLs loaded as a job "
            "(GET /fhir/$import-poll-status/{id})",
        }
    ]
