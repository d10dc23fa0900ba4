"""Import chunks written by the workers that prepared them (SQLite, two workers or more).

The differential test: the same folder imported with ``workers=2`` (workers write the chunks
they can, hand the others back) and with ``workers=0`` (the service writes everything) stores
the same versions, index rows and audit records, and the chain verifies with its checkpoints.
Then a worker killed in the middle of a chunk's write, before and after its commit: every line
is stored exactly once.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from medmesh.phi.bulk_import import importer, writing
from medmesh.phi.bulk_import.pool import PreparationPool
from medmesh.phi.bulk_import.standalone import import_directory
from medmesh.phi.config import PhiSettings
from medmesh.platform.audit import (
    audit_database_for,
    checkpoint_path,
    load_audit_keys,
    read_checkpoints,
    verify_chain,
)
from medmesh.platform.db import Database
from tests.phi.bulk_import.test_preparation import (
    BASE,
    _audit,
    _settings,
    _stored,
    _synthea_folder,
    lost_workers,
)
from tests.platform.write_lock import in_turn_held_here


def outcomes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What became of each chunk given to the workers, in order: written by its worker, or
    handed back to the service."""
    seen: list[str] = []
    written = PreparationPool.written

    async def noted(self: PreparationPool, future: Any) -> Any:
        outcome = await written(self, future)
        seen.append("written" if isinstance(outcome, writing.Written) else "handed back")
        return outcome

    monkeypatch.setattr(PreparationPool, "written", noted)
    return seen


async def _verified(settings: PhiSettings) -> tuple[bool, int, str]:
    database = Database(settings.effective_database_url)
    audit = audit_database_for(database)
    try:
        report = await verify_chain(
            audit,
            keys=load_audit_keys(settings, create=False),
            checkpoints=read_checkpoints(checkpoint_path(settings)),
            service=settings.service_name,
        )
    finally:
        await database.dispose()
        await audit.dispose()
    return report.ok, report.records, report.problem


async def test_workers_write_what_the_service_writes(
    phi_settings: PhiSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chunks = outcomes(monkeypatch)
    folder = tmp_path / "ndjson"
    folder.mkdir()
    _synthea_folder(folder)
    base = phi_settings.model_copy(update={"base_url": BASE})
    plain = await _settings(base, tmp_path / "plain")
    written = await _settings(base, tmp_path / "written")

    for run in (1, 2):
        chunks.clear()
        by_service = await import_directory(plain, folder, chunk_lines=40, workers=0)
        assert chunks == []
        by_workers = await import_directory(written, folder, chunk_lines=40, workers=2)
        # The first run: Observation.ndjson's first chunk holds a line twice (an update), so
        # it is handed back, as is its last (that line again); every other chunk is written
        # by a worker. The second run's lines all exist: every chunk is handed back.
        if run == 1:
            assert chunks.count("handed back") == 2
            assert chunks.count("written") == len(chunks) - 2 > 0
        else:
            assert set(chunks) == {"handed back"}
        assert [r.to_json() for r in by_workers] == [r.to_json() for r in by_service]
        assert _stored(written) == _stored(plain), f"run {run}"
        assert await _audit(written) == await _audit(plain), f"run {run}"
        ok, records, problem = await _verified(written)
        assert (ok, problem) == (True, "")
        assert records == len(await _audit(plain))


def test_chunks_wait_for_the_last_chunk_of_their_type_and_for_files_of_any_type() -> None:
    turns = writing.Turns(multiprocessing.get_context("fork"))
    issued = [
        turns.issue(kind)
        for kind in ("Patient", "Observation", "Patient", None, "Observation", "Patient")
    ]
    assert issued == [
        writing.Turn(0, ()),
        writing.Turn(1, ()),
        writing.Turn(2, (0,)),  # the Patient chunk before it
        writing.Turn(3, (2, 1)),  # a file of any type: the last chunk of each type
        writing.Turn(4, (3,)),  # the chunk of any type before it
        writing.Turn(5, (3,)),
    ]
    # Observation's first chunk waits for nothing, whatever the Patient chunks do.
    assert turns.wait(issued[1]) is True
    turns.done(0)
    assert turns.wait(issued[2]) is True
    turns.done(2)
    turns.done(1)
    assert turns.wait(issued[3]) is True
    # The service gives up the rest: their workers write nothing, and a later import's
    # chunks wait for none of them.
    turns.abandon()
    assert [turns.wait(one) for one in issued[4:]] == [False, False]
    assert turns.issue("Observation") == writing.Turn(6, ())


def _patients(folder: Path, count: int) -> None:
    lines = [
        orjson.dumps({"resourceType": "Patient", "id": f"p{n}", "name": [{"family": "Rowan"}]})
        for n in range(count)
    ]
    (folder / "Patient.ndjson").write_bytes(b"\n".join(lines) + b"\n")


def _versions(settings: PhiSettings) -> list[tuple[str, int]]:
    path = settings.effective_database_url.partition(":///")[2]
    with sqlite3.connect(path) as db:
        return db.execute("SELECT id, version FROM resource_versions ORDER BY id").fetchall()


async def test_an_imports_first_chunk_is_cut_so_that_the_first_write_starts_sooner(
    phi_settings: PhiSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chunks = outcomes(monkeypatch)
    folder = tmp_path / "ndjson"
    folder.mkdir()
    _patients(folder, 700)
    settings = await _settings(phi_settings, tmp_path / "db")
    progress: list[int] = []

    [report] = await import_directory(
        settings, folder, workers=2, on_chunk=lambda p: progress.append(p.lines)
    )

    # Chunks of 500 and 200 lines, the first cut after its first 100 lines.
    assert progress == [importer.FIRST_CHUNK_LINES, 500, 700]
    assert chunks == ["written", "written", "written"]
    assert (report.lines, report.stored, report.rejected) == (700, 700, 0)
    assert _versions(settings) == sorted((f"p{n}", 1) for n in range(700))


def test_a_worker_writes_only_in_the_workers_turn(tmp_path: Path) -> None:
    """The workers take turns to write (the service's checkpoints too): a worker whose turn
    another holds writes once that is given back, and gives its own back."""
    turn = multiprocessing.get_context("fork").Lock()
    plan = writing.WritePlan(
        f"sqlite+medmesh:///{tmp_path}/phi.db",
        f"sqlite+medmesh:///{tmp_path}/audit.db",
        {},
        None,
        frozenset(),
        "Patient.ndjson",
        None,
        0,
    )
    writer = writing.ChunkWriter(plan, turn)

    def write() -> str:
        writer.write(plan, [], datetime.now(UTC), 0)
        return "written"

    events = in_turn_held_here(turn, write)
    writer.engine.dispose()
    assert events == ["turn given back", "written"]
    assert turn.acquire(block=False)


async def test_a_chunk_with_a_resource_that_exists_is_handed_back_with_nothing_of_it_kept(
    phi_settings: PhiSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second chunk's last line is a resource stored before: its worker's inserts of the
    line before it roll back, and no record of the chunk is written; the service stores it (a
    create and an update) and records each once."""
    chunks = outcomes(monkeypatch)
    settings = await _settings(phi_settings, tmp_path / "db")
    before, folder = tmp_path / "before", tmp_path / "ndjson"
    before.mkdir()
    folder.mkdir()
    (before / "Patient.ndjson").write_bytes(
        orjson.dumps({"resourceType": "Patient", "id": "p3", "name": [{"family": "Ash"}]})
    )
    await import_directory(settings, before, workers=0)
    _patients(folder, 4)

    [report] = await import_directory(settings, folder, chunk_lines=2, workers=2)

    assert chunks == ["written", "handed back"]
    assert (report.lines, report.stored, report.rejected) == (4, 4, 0)
    assert _versions(settings) == [("p0", 1), ("p1", 1), ("p2", 1), ("p3", 1), ("p3", 2)]
    assert [(r[0], r[2]) for r in await _audit(settings)] == [
        ("fhir.create", "p3"),
        ("fhir.create", "p0"),
        ("fhir.create", "p1"),
        ("fhir.create", "p2"),
        ("fhir.update", "p3"),
    ]
    ok, _, problem = await _verified(settings)
    assert (ok, problem) == (True, "")


@pytest.mark.parametrize(
    ("when", "records"),
    [("at its start", 30), ("once its audit records are committed", 35), ("after its commit", 30)],
)
async def test_a_worker_killed_while_it_writes_a_chunk_loses_and_doubles_nothing(
    phi_settings: PhiSettings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    when: str,
    records: int,
) -> None:
    """The worker writing lines 11-15 is killed at the start of the write or between its audit
    records and its commit (the chunk is rolled back and stored by the service), or just after
    its commit (the chunk is there: the service works out its outcome and never stores it
    again)."""
    folder = tmp_path / "ndjson"
    folder.mkdir()
    _patients(folder, 30)
    settings = await _settings(phi_settings, tmp_path / "db")
    write, audit = writing.ChunkWriter.write, writing.ChunkWriter._audit

    def killed(self: Any, plan: Any, results: Any, now: Any, last_line: int) -> Any:
        self.killed = last_line == 15
        if self.killed and when == "at its start":
            os.kill(os.getpid(), signal.SIGKILL)
        done = write(self, plan, results, now, last_line)
        if self.killed and when == "after its commit":
            os.kill(os.getpid(), signal.SIGKILL)
        return done

    def audited(self: Any, *args: Any) -> Any:
        head = audit(self, *args)
        if self.killed and when == "once its audit records are committed":
            os.kill(os.getpid(), signal.SIGKILL)
        return head

    # Forked workers run the class as the test left it.
    monkeypatch.setattr(writing.ChunkWriter, "write", killed)
    monkeypatch.setattr(writing.ChunkWriter, "_audit", audited)
    lost = lost_workers(monkeypatch)

    [report] = await import_directory(settings, folder, chunk_lines=5, workers=2)

    assert lost  # the worker did die
    assert (report.lines, report.stored, report.rejected) == (30, 30, 0)
    assert _versions(settings) == sorted((f"p{n}", 1) for n in range(30))
    created = [r for r in await _audit(settings) if r[0] == "fhir.create"]
    # Each create is audited before it is written: a chunk rolled back with its worker has
    # records for writes that the service then made, and audited, itself.
    assert len(created) == records
    assert {r[2] for r in created} == {f"p{n}" for n in range(30)}
    ok, _, problem = await _verified(settings)
    assert (ok, problem) == (True, "")
