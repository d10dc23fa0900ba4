"""A large transaction of creates written by the preparation worker that prepared it (SQLite,
two workers or more), and every case where the service writes it instead.

What such a transaction stores and answers is compared with the service's own path in
``test_prepared_creates.py`` (the differential test). Here: a worker killed at three points of
the write (nothing is lost or stored twice, the answer is the same, the chain verifies), and
the transactions the workers leave to the service.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import time
from concurrent.futures.process import BrokenProcessPool
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from medmesh.phi.bulk_import import writing
from medmesh.phi.bulk_import.pool import PreparationPool
from medmesh.phi.bulk_import.preparation import LinePreparer
from medmesh.phi.bundles import processing
from medmesh.phi.config import PhiSettings
from medmesh.phi.protection import load_protection
from medmesh.platform.audit import audit_database_for, list_records
from medmesh.platform.db import Database
from medmesh.platform.testing import TokenFactory
from tests.phi.bulk_import.test_preparation import _audit, _settings, lost_workers
from tests.phi.bulk_import.test_writing import _verified
from tests.phi.bundles.test_prepared_creates import _absolute, _phi
from tests.phi.conftest import AUDIENCE

#: The metric of creates a worker stored itself.
WRITTEN = "medmesh_phi_transaction_resources_written_by_workers_total"


def _patient_and_observations(count: int) -> dict[str, Any]:
    """A transaction: a Patient and ``count`` Observations of it (placeholder references)."""
    bundle = _absolute(count)
    patient = "urn:uuid:00000000-0000-4000-8000-999999999999"
    for entry in bundle["entry"]:
        entry["resource"]["subject"] = {"reference": patient}
    bundle["entry"].insert(
        0,
        {
            "fullUrl": patient,
            "request": {"method": "POST", "url": "Patient"},
            "resource": {"resourceType": "Patient", "name": [{"family": "Rowan"}]},
        },
    )
    return bundle


def _headers(tokens: TokenFactory, scope: str = "system/*.cruds", **claims: Any) -> dict[str, str]:
    return {
        **tokens.headers(scope, audience=AUDIENCE, **claims),
        "Content-Type": "application/fhir+json",
    }


def _written(metrics: str) -> float:
    line = next(line for line in metrics.splitlines() if line.startswith(WRITTEN + " "))
    return float(line.split()[1])


def _stored_ids(settings: PhiSettings) -> list[tuple[str, int]]:
    path = settings.effective_database_url.partition(":///")[2]
    with sqlite3.connect(path) as db:
        return db.execute(
            "SELECT resource_type, count(*) FROM resource_versions GROUP BY resource_type "
            "ORDER BY resource_type"
        ).fetchall()


@pytest.mark.parametrize(
    ("when", "creates", "transactions"),
    [
        ("at its start", 71, 1),
        ("once its audit records are committed", 142, 2),
        ("after its commit", 71, 1),
    ],
)
async def test_a_worker_killed_while_it_writes_a_transaction_loses_and_doubles_nothing(
    phi_settings: PhiSettings,
    token_factory: TokenFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    when: str,
    creates: int,
    transactions: int,
) -> None:
    """Killed before its commit, the worker leaves nothing but, once they are committed, its
    audit records: the service prepares and writes the transaction itself. Killed after, the
    transaction is there: the service finds it and answers it, writing nothing more. (The
    stores are SQLite files whatever the database under test: ``_settings``.)"""
    settings = await _settings(phi_settings, tmp_path / "db")
    write, audit = writing.ChunkWriter.write_bundles, writing.ChunkWriter._audit

    def killed(self: Any, *args: Any) -> Any:
        if when == "at its start":
            os.kill(os.getpid(), signal.SIGKILL)
        done = write(self, *args)
        if when == "after its commit":
            os.kill(os.getpid(), signal.SIGKILL)
        return done

    def audited(self: Any, *args: Any) -> Any:
        head = audit(self, *args)
        if when == "once its audit records are committed":
            os.kill(os.getpid(), signal.SIGKILL)
        return head

    # Forked workers run the class as the test left it.
    monkeypatch.setattr(writing.ChunkWriter, "write_bundles", killed)
    monkeypatch.setattr(writing.ChunkWriter, "_audit", audited)
    lost = lost_workers(monkeypatch)
    bundle = _patient_and_observations(70)

    async with _phi(settings, token_factory) as http:
        response = await http.post(
            "/fhir", content=orjson.dumps(bundle), headers=_headers(token_factory)
        )
        metrics = (await http.get("/metrics")).text

    assert lost == [2]
    assert response.status_code == 200
    answers = response.json()["entry"]
    assert [a["response"]["status"] for a in answers] == ["201 Created"] * 71
    assert _stored_ids(settings) == [("Observation", 70), ("Patient", 1)]
    # Counted only when the worker answered (it never did).
    assert _written(metrics) == 0.0
    records = await _audit(settings)
    # Each create is audited before it is written: a transaction rolled back with its worker
    # has records for writes that the service then made, and audited, itself.
    assert sum(1 for r in records if r[0] == "fhir.create") == creates
    assert sum(1 for r in records if r[0] == "fhir.transaction") == transactions
    ok, _, problem = await _verified(settings)
    assert (ok, problem) == (True, "")


async def test_the_service_writes_what_the_workers_may_not_write_as_it_would(
    phi_settings: PhiSettings, token_factory: TokenFactory, tmp_path: Path
) -> None:
    """A transaction with an update among its creates, one with a conditional create, and one
    by a user who may create only in one patient's compartment: the service writes each (the
    workers only prepare); a plain transaction of creates by the system is the workers'."""
    settings = await _settings(phi_settings, tmp_path / "db")
    count = processing.PREPARED_CREATES + 6
    with_update = _patient_and_observations(count)
    with_update["entry"].append(
        {
            "request": {"method": "PUT", "url": "Patient/kept"},
            "resource": {"resourceType": "Patient", "id": "kept", "name": [{"family": "Ash"}]},
        }
    )
    conditional = _patient_and_observations(count)
    conditional["entry"][0]["request"]["ifNoneExist"] = "family=Rowan"
    system = _headers(token_factory)

    async with _phi(settings, token_factory) as http:
        statuses = []
        for bundle in (with_update, conditional):
            response = await http.post("/fhir", content=orjson.dumps(bundle), headers=system)
            statuses.append(response.status_code)
        after_service = _written((await http.get("/metrics")).text)
        # The user's Patient exists: their Observations may be created in its compartment.
        patient = with_update["entry"][-1]["resource"]["id"]
        user = _headers(token_factory, "patient/Observation.c", patient=patient)
        observations = _absolute(count)
        for entry in observations["entry"]:
            entry["resource"]["subject"] = {"reference": f"Patient/{patient}"}
        response = await http.post("/fhir", content=orjson.dumps(observations), headers=user)
        statuses.append(response.status_code)
        after_user = _written((await http.get("/metrics")).text)
        plain = await http.post(
            "/fhir", content=orjson.dumps(_patient_and_observations(count)), headers=system
        )
        statuses.append(plain.status_code)
        after_plain = _written((await http.get("/metrics")).text)

    assert statuses == [200, 200, 200, 200]
    assert (after_service, after_user, after_plain) == (0.0, 0.0, float(count + 1))


async def test_transactions_waiting_for_a_worker_are_written_together(
    phi_settings: PhiSettings,
    token_factory: TokenFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Six transactions at once, two workers that start each task late: the first two go to
    the workers, the other four wait and go together to the first worker free. Each is stored
    and answered as alone; the records of each are in its order, with its closing record
    after them; the chain verifies."""
    settings = await _settings(phi_settings, tmp_path / "db")
    prepare = LinePreparer.prepare_resources
    released = tmp_path / "released"

    def late(self: LinePreparer, *args: Any) -> Any:
        while not released.exists():  # until the transactions wait
            time.sleep(0.01)
        return prepare(self, *args)

    # Forked workers run the class as the test left it.
    monkeypatch.setattr(LinePreparer, "prepare_resources", late)
    groups: list[int] = []
    done = PreparationPool._bundles_done

    def noted(self: PreparationPool, group: Any, task: Any) -> None:
        groups.append(len(group))
        done(self, group, task)

    monkeypatch.setattr(PreparationPool, "_bundles_done", noted)
    submit = PreparationPool.submit_bundle_write

    def seen(self: PreparationPool, *args: Any) -> Any:
        future = submit(self, *args)
        if len(self._waiting_bundles) == 4:  # the workers may start
            released.touch()
        return future

    monkeypatch.setattr(PreparationPool, "submit_bundle_write", seen)
    bundles = [_patient_and_observations(processing.PREPARED_CREATES) for _ in range(6)]

    async with _phi(settings, token_factory) as http:
        responses = await asyncio.gather(
            *(
                http.post("/fhir", content=orjson.dumps(b), headers=_headers(token_factory))
                for b in bundles
            )
        )
        metrics = (await http.get("/metrics")).text

    assert sorted(groups) == [1, 1, 4]
    assert [r.status_code for r in responses] == [200] * 6
    creates = processing.PREPARED_CREATES + 1
    for response in responses:
        answers = response.json()["entry"]
        assert [a["response"]["status"] for a in answers] == ["201 Created"] * creates
    assert _written(metrics) == 6 * creates
    assert _stored_ids(settings) == [
        ("Observation", 6 * processing.PREPARED_CREATES),
        ("Patient", 6),
    ]
    database = audit_database_for(Database(settings.effective_database_url))
    try:
        records = await list_records(database, limit=100_000)
    finally:
        await database.dispose()
    # Each transaction's creates, then its closing record, one transaction after another.
    actions = [r.action for r in sorted(records, key=lambda r: r.seq)]
    assert actions == (["fhir.create"] * creates + ["fhir.transaction"]) * 6
    ok, _, problem = await _verified(settings)
    assert (ok, problem) == (True, "")


async def test_transactions_waiting_when_the_workers_stop_are_left_to_the_service(
    phi_settings: PhiSettings,
) -> None:
    """Both workers busy, a transaction waits in the service; the pool closes: its caller sees
    the pool's failure (and writes the transaction itself) instead of waiting for ever, and no
    worker is counted lost (the pool was stopped, nothing died)."""
    pool = PreparationPool(load_protection(phi_settings), 64, 2)
    pool._bundles_under_way = 2  # as if each worker had a transaction
    plan = writing.BundlePlan("sqlite:///phi.db", "sqlite:///audit.db", {}, {}, None, frozenset())
    future = pool.submit_bundle_write([], ("http://phi.test/fhir",), datetime.now(UTC), plan)
    assert future is not None
    assert not future.done()
    pool.close()
    outcome = await pool.bundle_written(future)
    assert isinstance(outcome, BrokenProcessPool)
    assert str(outcome) == "the pool stopped"
    assert pool.lost is False
