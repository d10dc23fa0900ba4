"""Lines prepared in worker processes store exactly what lines prepared in phi's process store.

A differential test on Synthea's resources with bad, repeated and absolute-reference lines
among them: the same folder imported with ``workers=0`` and ``workers=2`` into two databases
must give the same reports, the same versions (opened), the same index rows and the same
audit records, on a first run (creates) and on a second (updates). Then what the importer
takes its own way: lines a category-limited scope must look into, a worker that dies.
"""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import sqlite3
from functools import partial
from pathlib import Path
from typing import Any, cast

import orjson
import pytest

from medmesh.phi.bulk_import import preparation
from medmesh.phi.bulk_import.importer import NdjsonImporter
from medmesh.phi.bulk_import.pool import PreparationPool
from medmesh.phi.bulk_import.preparation import Prepared, Rejected
from medmesh.phi.bulk_import.progress import FileProgress
from medmesh.phi.bulk_import.standalone import import_directory
from medmesh.phi.bundles.staging import CreateStager
from medmesh.phi.components import PhiState
from medmesh.phi.config import PhiSettings
from medmesh.phi.migrations import upgrade
from medmesh.phi.protection import load_protection
from medmesh.platform.audit import audit_database_for
from medmesh.platform.audit.reading import list_records
from medmesh.platform.db import Database
from tests.phi.conftest import PhiHarness
from tests.phi.test_conformance import SYNTHEA_2019

_URN = re.compile(rb'"urn:uuid:([0-9a-f-]{36})"')
BASE = "http://127.0.0.1:8002/fhir"
INDEX_TABLES = ("search_strings", "search_tokens", "search_dates", "search_references")


def _local(match: re.Match[bytes], ids: dict[str, str]) -> bytes:
    return b'"' + ids["urn:uuid:" + match.group(1).decode()].encode() + b'"'


def _synthea_folder(folder: Path) -> int:
    """Three Synthea people as ``<Type>.ndjson``, with bad and repeated lines among them."""
    lines: dict[str, list[bytes]] = {}
    for path in sorted(SYNTHEA_2019.glob("*.json"))[:3]:
        bundle = orjson.loads(path.read_bytes())
        ids = {
            e["fullUrl"]: f"{e['resource']['resourceType']}/{e['fullUrl'][9:].replace('-', '')}"
            for e in bundle["entry"]
        }
        for entry in bundle["entry"]:
            text = _URN.sub(partial(_local, ids=ids), orjson.dumps(entry["resource"]))
            resource = orjson.loads(text)
            resource["id"] = ids[entry["fullUrl"]].partition("/")[2]
            lines.setdefault(resource["resourceType"], []).append(orjson.dumps(resource))
    observations = lines["Observation"]
    patient = orjson.loads(lines["Patient"][0])["id"]
    first = orjson.loads(observations[0])
    absolute = {**first, "id": "absolute-subject"}
    absolute["subject"] = {"reference": f"{BASE}/Patient/{patient}"}
    observations[5:5] = [
        b"{not json",
        orjson.dumps({**first, "id": "bogus-status", "status": "bogus-code"}),
        orjson.dumps({**first, "id": "unknown-element", "colour": "red"}),
        orjson.dumps({**first, "id": "bad id!"}),
        lines["Patient"][0],
        b"",
        orjson.dumps(absolute),
        orjson.dumps({**first, "status": "amended"}),  # the first line again: an update
    ]
    observations.append(orjson.dumps({**first, "status": "corrected"}))  # and again, chunks later
    for kind, rows in lines.items():
        (folder / f"{kind}.ndjson").write_bytes(b"\n".join(rows) + b"\n")
    return sum(len(rows) for rows in lines.values())


async def _settings(base: PhiSettings, folder: Path) -> PhiSettings:
    os.makedirs(folder)
    settings = base.model_copy(
        update={"database_url": f"sqlite+medmesh:///{folder}/phi.db", "var_dir": folder}
    )
    await upgrade(settings.effective_database_url)
    return settings


def _stored(settings: PhiSettings) -> dict[str, Any]:
    """Every version (opened, ``meta.lastUpdated`` left out), current row and index row."""
    protection = load_protection(settings)
    path = settings.effective_database_url.partition(":///")[2]
    with sqlite3.connect(path) as db:
        versions = []
        for resource_type, id_, version, deleted, patient, method, body in db.execute(
            "SELECT resource_type, id, version, deleted, patient_id, method, body "
            "FROM resource_versions ORDER BY resource_type, id, version"
        ):
            opened: dict[str, Any] | None = None
            if body:
                opened = dict(protection.open(body, resource_type, id_, version))
                meta = cast(dict[str, Any], opened["meta"])
                opened["meta"] = {k: v for k, v in meta.items() if k != "lastUpdated"}
            versions.append((resource_type, id_, version, deleted, patient, method, opened))
        current = db.execute(
            "SELECT resource_type, id, version, deleted, patient_id FROM resources "
            "ORDER BY resource_type, id"
        ).fetchall()
        index = {
            table: sorted(db.execute(f"SELECT * FROM {table}").fetchall()) for table in INDEX_TABLES
        }
    return {"versions": versions, "current": current, "index": index}


async def _audit(settings: PhiSettings) -> list[tuple[Any, ...]]:
    """The audit records of ``settings``' store, each type's in the order of the chain (the
    workers commit chunks of different types in either order)."""
    database = audit_database_for(Database(settings.effective_database_url))
    try:
        records = await list_records(database, limit=100_000)
    finally:
        await database.dispose()
    return [
        (r.action, r.resource_type, r.resource_id, r.outcome, r.patient_ids, r.details)
        for r in sorted(records, key=lambda r: (r.resource_type or "", r.seq))
    ]


def sealed_here(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ids of the creates the service's process seals itself (``CreateStager.hold``; the
    workers' creates are held sealed), as they are held."""
    held: list[str] = []
    hold = CreateStager.hold

    def counted(self: CreateStager, resource: dict[str, Any], resource_id: str) -> Any:
        held.append(resource_id)
        return hold(self, resource, resource_id)

    monkeypatch.setattr(CreateStager, "hold", counted)
    return held


async def test_workers_store_what_the_service_process_stores(
    phi_settings: PhiSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    held_here = sealed_here(monkeypatch)
    folder = tmp_path / "ndjson"
    folder.mkdir()
    lines = _synthea_folder(folder)
    base = phi_settings.model_copy(update={"base_url": BASE})
    plain = await _settings(base, tmp_path / "plain")
    pooled = await _settings(base, tmp_path / "pooled")

    for run in (1, 2):
        reports: dict[str, list[dict[str, Any]]] = {}
        sealed: dict[str, int] = {}
        for name, settings, workers in (("plain", plain, 0), ("pooled", pooled, 2)):
            held_here.clear()
            done = await import_directory(settings, folder, chunk_lines=40, workers=workers)
            reports[name] = [r.to_json() for r in done]
            sealed[name] = len(held_here)
        assert reports["pooled"] == reports["plain"], f"run {run}"
        # The first run's 208 creates: sealed here without workers, by the workers with them;
        # the second run's lines are updates, taken the importer's own way.
        assert sealed == ({"plain": 208, "pooled": 0} if run == 1 else {"plain": 0, "pooled": 0})
        assert sum(r["lines"] for r in reports["plain"]) == lines
        assert _stored(pooled) == _stored(plain), f"run {run}"
        assert await _audit(pooled) == await _audit(plain), f"run {run}"

    observations = next(r for r in reports["plain"] if r["source"] == "Observation.ndjson")
    assert [i["diagnostics"].partition(": ")[2] for i in observations["issues"]] == [
        "not JSON",
        "Observation.status: not a code of its required value set",
        "Observation.colour: unknown element",
        "id is not a valid FHIR id",
        "a Patient in a file of Observation",
    ]
    stored = _stored(pooled)
    absolute = next(v for v in stored["versions"] if v[1] == "absolute-subject")
    assert absolute[6]["subject"]["reference"].startswith("Patient/")
    first_id = orjson.loads((folder / "Observation.ndjson").read_bytes().splitlines()[0])["id"]
    history = [v[2:7:4] for v in stored["versions"] if v[1] == first_id]
    assert [(version, body["status"]) for version, body in history] == [
        (1, "final"),
        (2, "amended"),
        (3, "corrected"),
        (4, "final"),
        (5, "amended"),
        (6, "corrected"),
    ]


def test_a_worker_rejects_what_it_cannot_store_and_prepares_the_rest(
    phi_settings: PhiSettings,
) -> None:
    preparer = preparation.LinePreparer(load_protection(phi_settings), 64)
    patient = {"resourceType": "Patient", "id": "p1", "name": [{"family": "Quince"}]}
    chunk = [
        (1, orjson.dumps(patient)),
        (2, b"   "),
        (3, b"[1]"),
        (4, orjson.dumps({"resourceType": "Patient", "id": "p2", "gender": "bogus"})),
    ]

    first, blank, array, bad = preparer.prepare(chunk, "Patient", (BASE,), _now())

    assert isinstance(first, Prepared)
    assert (first.resource_type, first.resource_id, first.patient_id) == ("Patient", "p1", "p1")
    assert first.policy_patient is None
    opened = load_protection(phi_settings).open(first.body, "Patient", "p1", 1)
    assert opened["meta"] == {"versionId": "1", "lastUpdated": "2026-12-05T03:00:00.000Z"}
    strings = first.rows[0]
    assert strings
    assert {row[:2] for row in strings} == {("Patient", "p1")}
    assert blank is None
    assert array == Rejected(3, "structure", "not a JSON object")
    assert bad == Rejected(
        4, "code-invalid", "Patient.gender: not a code of its required value set", "Patient.gender"
    )


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime(2026, 12, 5, 3, 0, tzinfo=UTC)


async def test_a_scope_limited_to_categories_is_decided_on_the_resource(
    phi: PhiHarness, tmp_path: Path
) -> None:
    """``system/Observation.c?category=vital-signs`` grants nothing without the resource: the
    importer takes such lines its own way, stores those in the category and audits the rest
    as refused."""
    from medmesh.phi.access.policy import AccessPolicy
    from medmesh.phi.bulk_import.standalone import cli_context
    from medmesh.platform.tokens import ScopeSet

    def observation(oid: str, category: str) -> bytes:
        return orjson.dumps(
            {
                "resourceType": "Observation",
                "id": oid,
                "status": "final",
                "category": [
                    {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                "code": category,
                            }
                        ]
                    }
                ],
                "code": {"text": "pulse"},
            }
        )

    ctx = cli_context(phi.settings)
    scope = "system/Observation.c?category=vital-signs"
    principal = dataclasses.replace(ctx.principal, scopes=ScopeSet(scope), raw_scope=scope)
    ctx.policy = AccessPolicy(principal)
    state = PhiState.of(phi.app)
    resources = state.phi.resources
    pool = PreparationPool(resources.protection, 64, 1)
    importer = NdjsonImporter(resources, state.database, ctx, pool=pool)
    chunk = [(1, observation("vital", "vital-signs")), (2, observation("lab", "laboratory"))]
    prepared = await pool.result(pool.submit(chunk, "Observation", (BASE,), _now()))
    pool.close()
    assert prepared is not None
    assert all(isinstance(p, Prepared) for p in prepared)

    progress = await importer.store_chunk(
        chunk, FileProgress("Observation.ndjson", "Observation"), None, prepared, _now()
    )

    assert (progress.stored, progress.rejected) == (1, 1)
    headers = phi.headers()
    assert (await phi.http.get("/fhir/Observation/vital", headers=headers)).status_code == 200
    assert (await phi.http.get("/fhir/Observation/lab", headers=headers)).status_code == 404


def lost_workers(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The pools that lost a worker (their number of workers), as they lose it."""
    lost: list[int] = []
    broken = PreparationPool._broken

    def noted(self: PreparationPool) -> None:
        lost.append(self.workers)
        broken(self)

    monkeypatch.setattr(PreparationPool, "_broken", noted)
    return lost


async def test_when_a_worker_dies_the_import_goes_on_without_workers(
    phi: PhiHarness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    patients = [
        orjson.dumps({"resourceType": "Patient", "id": f"p{n}", "name": [{"family": "Rowan"}]})
        for n in range(30)
    ]
    (tmp_path / "Patient.ndjson").write_bytes(b"\n".join(patients) + b"\n")
    original = preparation.LinePreparer.prepare

    def dies_at_the_third_chunk(self: Any, chunk: Any, *args: Any) -> Any:
        if chunk[0][0] == 11:
            os.kill(os.getpid(), signal.SIGKILL)
        return original(self, chunk, *args)

    # Forked workers run the class as the test left it.
    monkeypatch.setattr(preparation.LinePreparer, "prepare", dies_at_the_third_chunk)

    lost = lost_workers(monkeypatch)

    [report] = await import_directory(phi.settings, tmp_path, chunk_lines=5, workers=1)

    assert lost  # the worker did die

    assert (report.lines, report.stored, report.rejected) == (30, 30, 0)
    found = await phi.http.get("/fhir/Patient", params={"_summary": "count"}, headers=phi.headers())
    assert found.json()["total"] == 30


def test_a_chunk_seals_its_bodies_under_one_data_key(phi_settings: PhiSettings) -> None:
    protection = load_protection(phi_settings)
    preparer = preparation.LinePreparer(protection, 64)

    def line(number: int, patient_id: str) -> tuple[int, bytes]:
        return number, orjson.dumps({"resourceType": "Patient", "id": patient_id})

    one, two = preparer.prepare([line(1, "p1"), line(2, "p2")], "Patient", (BASE,), _now())
    (later,) = preparer.prepare([line(1, "p3")], "Patient", (BASE,), _now())

    assert isinstance(one, Prepared)
    assert isinstance(two, Prepared)
    assert isinstance(later, Prepared)
    wrapped = slice(0, 2 + len(protection.keys.active_kid) + 60)
    assert one.body[wrapped] == two.body[wrapped]
    assert later.body[wrapped] != one.body[wrapped]
    assert protection.open(two.body, "Patient", "p2", 1)["id"] == "p2"
    assert protection.open(later.body, "Patient", "p3", 1)["id"] == "p3"
