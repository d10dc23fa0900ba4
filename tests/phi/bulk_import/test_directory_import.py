"""``medmesh phi import DIR``: NDJSON files stored, rejected lines listed, audited, re-runnable."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from medmesh.cli import app as cli_app
from medmesh.phi.bulk_import.standalone import file_type, import_directory
from tests.phi.bundles.builders import audit_records
from tests.phi.conftest import PhiHarness


def _patient(pid: str, family: str) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "name": [{"family": family, "given": ["Ann"]}]}


def _observation(oid: str, patient: str, status: str = "final") -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": status,
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": f"Patient/{patient}"},
        "valueQuantity": {"value": 1.50, "unit": "/min"},
    }


def _write(path: Path, *lines: dict[str, Any] | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        b"\n".join(line if isinstance(line, bytes) else orjson.dumps(line) for line in lines)
        + b"\n"
    )


def _folder(root: Path) -> Path:
    _write(
        root / "ndjson" / "Patient.ndjson", _patient("pat-1", "Quince"), _patient("pat-2", "Rowan")
    )
    _write(
        root / "ndjson" / "Observation.ndjson",
        _observation("obs-1", "pat-1"),
        b"",
        b"{not json",
        _observation("obs-2", "pat-2", status="bogus-code"),
        _patient("pat-3", "Stray"),
        _observation("obs-3", "pat-2"),
    )
    return root


async def test_a_folder_is_stored_and_its_bad_lines_listed(phi: PhiHarness, tmp_path: Path) -> None:
    reports = await import_directory(phi.settings, _folder(tmp_path / "run"), chunk_lines=2)

    assert [(r.source, r.resource_type, r.lines, r.stored, r.rejected) for r in reports] == [
        ("ndjson/Observation.ndjson", "Observation", 6, 2, 3),
        ("ndjson/Patient.ndjson", "Patient", 2, 2, 0),
    ]
    assert [issue["diagnostics"] for issue in reports[0].issues] == [
        "ndjson/Observation.ndjson line 3: not JSON",
        "ndjson/Observation.ndjson line 4: Observation.status: not a code of its required value set",
        "ndjson/Observation.ndjson line 5: a Patient in a file of Observation",
    ]
    assert [issue.get("expression") for issue in reports[0].issues] == [
        None,
        ["Observation.status"],
        None,
    ]
    headers = phi.headers()
    observation = await phi.http.get("/fhir/Observation/obs-1", headers=headers)
    assert observation.status_code == 200
    assert observation.json()["valueQuantity"]["value"] == 1.5
    assert observation.json()["meta"]["versionId"] == "1"
    assert (await phi.http.get("/fhir/Observation/obs-2", headers=headers)).status_code == 404
    found = await phi.http.get("/fhir/Patient", params={"name": "quin"}, headers=headers)
    assert [e["resource"]["id"] for e in found.json()["entry"]] == ["pat-1"]
    in_compartment = await phi.http.get(
        "/fhir/Observation", params={"patient": "Patient/pat-2"}, headers=headers
    )
    assert [e["resource"]["id"] for e in in_compartment.json()["entry"]] == ["obs-3"]

    creates = await audit_records(phi, "fhir.create")
    assert sorted((r.resource_type, r.resource_id) for r in creates) == [
        ("Observation", "obs-1"),
        ("Observation", "obs-3"),
        ("Patient", "pat-1"),
        ("Patient", "pat-2"),
    ]
    assert {(r.actor, r.client_id, r.details.get("bulk")) for r in creates} == {
        ("cli", "medmesh-cli", "ndjson")
    }
    assert [r.patient_ids for r in creates if r.resource_id == "obs-3"] == [["pat-2"]]


async def test_running_it_again_makes_new_versions_not_copies(
    phi: PhiHarness, tmp_path: Path
) -> None:
    folder = _folder(tmp_path / "run")
    await import_directory(phi.settings, folder)
    again = await import_directory(phi.settings, folder)

    assert [(r.stored, r.rejected) for r in again] == [(2, 3), (2, 0)]
    headers = phi.headers()
    read = await phi.http.get("/fhir/Patient/pat-1", headers=headers)
    assert read.json()["meta"]["versionId"] == "2"
    history = await phi.http.get("/fhir/Patient/pat-1/_history", headers=headers)
    assert [e["request"]["method"] for e in history.json()["entry"]] == ["PUT", "PUT"]
    total = await phi.http.get("/fhir/Patient", params={"_summary": "count"}, headers=headers)
    assert total.json()["total"] == 2
    updates = await audit_records(phi, "fhir.update")
    assert len(updates) == 4


async def test_a_line_twice_in_one_chunk_is_two_versions(phi: PhiHarness, tmp_path: Path) -> None:
    _write(tmp_path / "Patient.ndjson", _patient("twice", "One"), _patient("twice", "Two"))

    [report] = await import_directory(phi.settings, tmp_path)

    assert (report.stored, report.rejected) == (2, 0)
    read = await phi.http.get("/fhir/Patient/twice", headers=phi.headers())
    assert (read.json()["meta"]["versionId"], read.json()["name"][0]["family"]) == ("2", "Two")


def test_file_names_announce_their_type() -> None:
    assert file_type("Patient.ndjson") == "Patient"
    assert file_type("Observation.000.ndjson") == "Observation"
    assert file_type("Observation-2.ndjson") == "Observation"
    assert file_type("Nonsense.ndjson") is None
    assert file_type("export.ndjson") is None


@pytest.fixture
def phi_env(phi: PhiHarness, monkeypatch: pytest.MonkeyPatch) -> PhiHarness:
    settings = phi.settings
    monkeypatch.setenv("MEDMESH_PHI_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("MEDMESH_PHI_VAR_DIR", str(settings.var_dir))
    monkeypatch.setenv("MEDMESH_PHI_ENCRYPTION_KEYS", settings.encryption_keys)
    monkeypatch.setenv("MEDMESH_PHI_BLIND_INDEX_KEY", settings.blind_index_key)
    return phi


async def test_the_command_reports_each_file_and_exits_1_on_rejected_lines(
    phi_env: PhiHarness, tmp_path: Path
) -> None:
    folder = _folder(tmp_path / "run")
    runner = CliRunner()
    # The command runs its own event loop: in a thread, beside this test's.
    result = await asyncio.to_thread(runner.invoke, cli_app, ["phi", "import", str(folder)])

    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert lines[0] == "ndjson/Observation.ndjson: 2 stored, 3 rejected (6 lines)"
    assert "ndjson/Patient.ndjson: 2 stored, 0 rejected (2 lines)" in lines
    assert lines[-1] == "phi: 4 resources stored, 3 lines rejected"
    assert "Quince" not in result.output
    assert "bogus" not in result.output

    empty = await asyncio.to_thread(runner.invoke, cli_app, ["phi", "import", str(tmp_path)])
    assert empty.exit_code == 2
