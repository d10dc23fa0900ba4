"""The audit trail: durable group commit, a verifiable hash chain, and queries."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram
from sqlalchemy import text
from sqlalchemy.dialects import sqlite as sqlite_dialect

from medmesh.platform.audit import (
    AuditKeys,
    AuditRecord,
    AuditSealing,
    AuditTrail,
    AuditWriteFailed,
    ensure_audit_tables,
    list_records,
    verify_chain,
)
from medmesh.platform.audit.chain import (
    GENESIS_HASH,
    AuditEntry,
    SqliteAppender,
    _json_text,
    link,
)
from medmesh.platform.audit.trail import _row
from medmesh.platform.db import Base, Database, sqlite, utcnow
from tests.platform.write_lock import file_and_wal_bytes, lock_held_elsewhere

KEYS = AuditKeys.generate("t1")
SEALING = AuditSealing(KEYS)


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_url)
    async with db.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    try:
        yield db
    finally:
        await db.dispose()


@pytest.fixture
async def trail(database: Database) -> AsyncIterator[AuditTrail]:
    audit = AuditTrail(database, "phi", flush_interval_ms=1.0, sealing=SEALING)
    await audit.start()
    try:
        yield audit
    finally:
        await audit.stop()


def read(n: int, patient: str = "p-1", actor: str = "u-1") -> AuditRecord:
    return AuditRecord(
        action="fhir.read",
        actor=actor,
        client_id="portal",
        roles=["clinician"],
        patient_ids=[patient],
        resource_type="Observation",
        resource_id=f"obs-{n}",
        source_ip="10.0.0.1",
        request_id=f"req-{n}",
        details={"n": n, "fields": {"b": 1, "a": [1.5, None]}},
    )


async def record_many(trail: AuditTrail, n: int) -> None:
    await asyncio.gather(*(trail.record(read(i)) for i in range(n)))


async def test_records_are_committed_and_chain_verifies(
    trail: AuditTrail, database: Database
) -> None:
    await trail.record(read(0))
    await trail.record(
        AuditRecord(action="auth.login", outcome="failure", details={"reason": "bad password"})
    )

    report = await verify_chain(database, keys=KEYS)
    assert report.ok, report.problem
    assert report.records == 2
    stored = await list_records(database)
    assert [r.seq for r in stored] == [1, 2]
    assert stored[0].patient_ids == ["p-1"]
    assert stored[0].service == "phi"
    assert stored[1].outcome == "failure"
    assert stored[1].prev_hash == stored[0].hash


async def test_empty_chain_verifies(database: Database) -> None:
    report = await verify_chain(database, keys=KEYS)
    assert report.ok
    assert report.records == 0


async def test_concurrent_records_get_contiguous_seqs(
    trail: AuditTrail, database: Database
) -> None:
    await record_many(trail, 200)

    stored = await list_records(database, limit=1000)
    assert [r.seq for r in stored] == list(range(1, 201))
    assert sorted(r.resource_id or "" for r in stored) == sorted(f"obs-{i}" for i in range(200))
    report = await verify_chain(database, keys=KEYS)
    assert report.ok, report.problem
    assert report.records == 200


async def test_record_many_commits_each_record_in_order_across_batches(
    database: Database,
) -> None:
    audit = AuditTrail(database, "phi", flush_interval_ms=1.0, max_batch=7, sealing=SEALING)
    await audit.start()
    try:
        await audit.record(read(0))
        await audit.record_many([read(i) for i in range(1, 21)])
        # Returned: every record of the call is committed (three batches of at most seven).
        stored = await list_records(database, limit=1000)
    finally:
        await audit.stop()

    assert [r.seq for r in stored] == list(range(1, 22))
    assert [r.resource_id for r in stored] == [f"obs-{i}" for i in range(21)]
    for i, entry in enumerate(stored):
        expected = read(i)
        assert (entry.action, entry.actor, entry.client_id) == ("fhir.read", "u-1", "portal")
        assert (list(entry.roles), list(entry.patient_ids)) == (["clinician"], ["p-1"])
        assert (entry.source_ip, entry.request_id) == ("10.0.0.1", f"req-{i}")
        assert entry.details == expected.details
    report = await verify_chain(database, keys=KEYS)
    assert report.ok, report.problem
    assert report.records == 21


async def test_record_many_raises_when_its_records_are_not_written(database: Database) -> None:
    audit = AuditTrail(database, "phi", flush_interval_ms=1.0, sealing=SEALING)
    await audit.start()
    try:
        await audit.record_many([])  # nothing to write: returns
        async with database.engine.begin() as conn:
            await conn.execute(text("DROP TABLE audit_log"))
        with pytest.raises(AuditWriteFailed):
            await audit.record_many([read(1), read(2)])
    finally:
        await audit.stop()
    with pytest.raises(AuditWriteFailed):
        await audit.record_many([read(3)])


async def test_record_each_stores_what_record_many_stores_for_the_same_records(
    tmp_path: Path,
) -> None:
    at = datetime(2026, 12, 5, 9, 30, 0, 123456, tzinfo=UTC)
    template = AuditRecord(
        action="fhir.create",
        actor="u-1",
        client_id="portal",
        roles=("clinician", "ü"),
        source_ip="10.0.0.1",
        request_id="req-1",
        details={"bundle": "transaction", "nested": {"z": [1.5, None], "a": True}},
        ts=at,
    )
    subjects: list[tuple[str | None, str | None, list[str]]] = [
        ("Observation", f"obs-{i}", [f"p-{i % 3}"]) for i in range(9)
    ]
    subjects += [("Organization", "org-1", []), (None, None, ["p-b", "p-a"])]
    stored: dict[str, list[tuple[object, ...]]] = {}
    for way in ("each", "many"):
        db = Database(f"sqlite+medmesh:///{tmp_path}/{way}.db")
        async with db.engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        audit = AuditTrail(db, "phi", flush_interval_ms=1.0, max_batch=4, sealing=SEALING)
        await audit.start()
        try:
            if way == "each":
                await audit.record_each(template, subjects)
            else:
                await audit.record_many(
                    [
                        AuditRecord(
                            action="fhir.create",
                            actor="u-1",
                            client_id="portal",
                            roles=("clinician", "ü"),
                            patient_ids=patients,
                            resource_type=resource_type,
                            resource_id=resource_id,
                            source_ip="10.0.0.1",
                            request_id="req-1",
                            details={
                                "bundle": "transaction",
                                "nested": {"z": [1.5, None], "a": True},
                            },
                            ts=at,
                        )
                        for resource_type, resource_id, patients in subjects
                    ]
                )
            report = await verify_chain(db, keys=KEYS)
            async with db.engine.connect() as conn:
                rows = (await conn.execute(text("SELECT * FROM audit_log ORDER BY seq"))).all()
        finally:
            await audit.stop()
            await db.dispose()
        assert report.ok, report.problem
        assert report.records == 11
        stored[way] = [tuple(row) for row in rows]

    # The same columns, byte for byte: the same JSON texts, times and links.
    assert stored["each"] == stored["many"]
    records = await _records_of(tmp_path / "each.db")
    assert [(r.resource_type, r.resource_id, list(r.patient_ids)) for r in records] == subjects
    assert {(r.actor, r.request_id, r.ts) for r in records} == {("u-1", "req-1", at)}


async def _records_of(path: Path) -> list[Any]:
    db = Database(f"sqlite+medmesh:///{path}")
    try:
        return list(await list_records(db, limit=100))
    finally:
        await db.dispose()


async def test_two_trails_on_one_database_keep_one_chain(database_url: str) -> None:
    first, second = Database(database_url), Database(database_url)
    async with first.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    trails = [AuditTrail(first, "phi", sealing=SEALING), AuditTrail(second, "phi", sealing=SEALING)]
    try:
        for t in trails:
            await t.start()
        await asyncio.gather(*(trails[i % 2].record(read(i)) for i in range(100)))
        report = await verify_chain(first, keys=KEYS)
        assert report.ok, report.problem
        assert report.records == 100
    finally:
        for t in trails:
            await t.stop()
        await first.dispose()
        await second.dispose()


async def test_edited_record_is_detected(trail: AuditTrail, database: Database) -> None:
    await record_many(trail, 10)
    async with database.engine.begin() as conn:
        await conn.execute(text("UPDATE audit_log SET actor = 'someone-else' WHERE seq = 4"))

    report = await verify_chain(database, keys=KEYS)
    assert not report.ok
    assert report.first_bad_seq == 4
    assert report.problem == "record 4 does not match its HMAC link (changed or re-linked)"


async def test_edited_hash_is_detected(trail: AuditTrail, database: Database) -> None:
    await record_many(trail, 5)
    async with database.engine.begin() as conn:
        await conn.execute(text("UPDATE audit_log SET hash = :h WHERE seq = 2"), {"h": "f" * 64})

    report = await verify_chain(database, keys=KEYS)
    assert (report.ok, report.first_bad_seq) == (False, 2)


async def test_removed_middle_record_is_detected(trail: AuditTrail, database: Database) -> None:
    await record_many(trail, 10)
    async with database.engine.begin() as conn:
        await conn.execute(text("DELETE FROM audit_log WHERE seq = 6"))

    report = await verify_chain(database, keys=KEYS)
    assert not report.ok
    assert report.first_bad_seq == 6
    assert "missing" in report.problem


async def test_removed_last_records_are_detected(trail: AuditTrail, database: Database) -> None:
    await record_many(trail, 10)
    async with database.engine.begin() as conn:
        await conn.execute(text("DELETE FROM audit_log WHERE seq >= 9"))

    report = await verify_chain(database, keys=KEYS)
    assert not report.ok
    assert report.records == 8
    assert report.first_bad_seq == 9
    assert "head" in report.problem


async def test_swapped_records_are_detected(trail: AuditTrail, database: Database) -> None:
    await record_many(trail, 10)
    columns = [
        *("ts", "service", "action", "outcome", "actor", "client_id", "roles", "patient_ids"),
        *("resource_type", "resource_id", "source_ip", "purpose", "request_id", "details"),
        *("prev_hash", "hash"),
    ]
    assignments = ", ".join(
        f"{c} = (SELECT {c} FROM swap AS o WHERE o.seq = 3 + 5 - audit_log.seq)" for c in columns
    )
    async with database.engine.begin() as conn:
        await conn.execute(text("CREATE TABLE swap AS SELECT * FROM audit_log WHERE seq IN (3, 5)"))
        await conn.execute(text(f"UPDATE audit_log SET {assignments} WHERE seq IN (3, 5)"))
        swapped = (
            await conn.execute(text("SELECT resource_id FROM audit_log WHERE seq IN (3, 5)"))
        ).all()
    assert sorted(r[0] for r in swapped) == ["obs-2", "obs-4"]

    report = await verify_chain(database, keys=KEYS)
    assert not report.ok
    assert report.first_bad_seq == 3


async def test_write_failure_raises_and_is_counted(database: Database) -> None:
    registry = CollectorRegistry()
    records = Counter("medmesh_audit_records", "records written", registry=registry)
    failures = Counter("medmesh_audit_write_failures", "failed batches", registry=registry)
    sizes = Histogram("medmesh_audit_batch_size", "batch sizes", registry=registry)
    audit = AuditTrail(
        database,
        "phi",
        records_counter=records,
        failures_counter=failures,
        batch_histogram=sizes,
        flush_interval_ms=20,  # both failing records land in one batch
    )
    await audit.start()
    try:
        await audit.record(read(0))
        async with database.engine.begin() as conn:
            await conn.execute(text("DROP TABLE audit_log"))

        with pytest.raises(AuditWriteFailed) as caught:
            await asyncio.gather(audit.record(read(1)), audit.record(read(2)))
    finally:
        await audit.stop()
    assert caught.value.status == 503
    assert registry.get_sample_value("medmesh_audit_write_failures_total") == 1
    assert registry.get_sample_value("medmesh_audit_records_total") == 1
    assert registry.get_sample_value("medmesh_audit_batch_size_count") == 1


async def test_unreachable_database_raises_audit_write_failed() -> None:
    database = Database("postgresql+asyncpg://postgres@127.0.0.1:1/nowhere")
    audit = AuditTrail(database, "phi", sealing=SEALING)
    await audit.start()
    try:
        with pytest.raises(AuditWriteFailed):
            await audit.record(read(0))
    finally:
        await audit.stop()
        await database.dispose()


async def test_record_after_stop_raises(database: Database) -> None:
    audit = AuditTrail(database, "phi", sealing=SEALING)
    await audit.start()
    pending = asyncio.create_task(audit.record(read(0)))
    await asyncio.sleep(0)
    await audit.stop()
    await pending  # queued before stop: written, not dropped
    with pytest.raises(AuditWriteFailed):
        await audit.record(read(1))
    assert (await verify_chain(database, keys=KEYS)).records == 1


async def test_list_records_filters_and_pages(trail: AuditTrail, database: Database) -> None:
    start = utcnow()
    await trail.record(read(1, patient="p-a", actor="alice"))
    await trail.record(AuditRecord(action="fhir.search", actor="bob", patient_ids=["p-b", "p-a"]))
    await trail.record(read(3, patient="p-c", actor="alice"))

    by_patient = await list_records(database, patient="p-a")
    assert [r.seq for r in by_patient] == [1, 2]
    assert [r.seq for r in await list_records(database, actor="alice")] == [1, 3]
    assert [r.seq for r in await list_records(database, action="fhir.search")] == [2]
    assert [r.seq for r in await list_records(database, after_seq=1, limit=1)] == [2]
    assert len(await list_records(database, since=start)) == 3
    assert await list_records(database, until=start) == []
    assert await list_records(database, since=utcnow() + timedelta(seconds=1)) == []
    assert await list_records(database, patient="p-zzz") == []


async def test_many_concurrent_callers_make_one_verified_chain(
    trail: AuditTrail, database: Database
) -> None:
    # Records/s is a benchmark figure (bench/), not asserted here: this checks what a burst of
    # concurrent callers leaves behind.
    callers, per_caller = 100, 50

    async def caller(c: int) -> None:
        for i in range(per_caller):
            await trail.record(read(c * per_caller + i))

    await asyncio.gather(*(caller(c) for c in range(callers)))
    result = await verify_chain(database, keys=KEYS)
    assert result.ok
    assert result.records == callers * per_caller


async def test_sqlite_trail_waits_for_another_process_without_blocking_the_loop(
    tmp_path: Path,
) -> None:
    database = Database(f"sqlite+medmesh:///{tmp_path / 'svc-audit.db'}")
    await ensure_audit_tables(database)
    audit = AuditTrail(database, "phi", sealing=SEALING)
    await audit.start()
    try:
        async with lock_held_elsewhere(tmp_path / "svc-audit.db") as holder:
            recording = asyncio.create_task(audit.record(read(0)))
            # The loop serves other work while the record waits for the lock.
            await holder.served_ticks(3)
            assert not recording.done()
            await holder.release()
            await recording
    finally:
        await audit.stop()
    assert (await verify_chain(database, keys=KEYS)).records == 1
    await database.dispose()


async def test_sqlite_trail_checkpoints_its_wal_off_the_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite.checkpoints, "CHECKPOINT_SECONDS", 0.0)
    path = tmp_path / "svc-audit.db"
    database = Database(f"sqlite+medmesh:///{path}")
    await ensure_audit_tables(database)
    audit = AuditTrail(database, "phi", sealing=SEALING)
    await audit.start()
    batches = 0
    try:
        for _ in range(30):
            # Batches without a pause (checkpoints run beside them), then the round's checkpoint
            # settles: at each round's end the WAL is wholly copied, whatever the machine's speed.
            for _ in range(10):
                await record_many(audit, 5)
                batches += 1
            await sqlite.checkpoints_settled(str(path))
        database_bytes, wal_bytes = file_and_wal_bytes(path)
    finally:
        await audit.stop()
    # The records reached the database file while the trail's connection stayed open (SQLite's
    # own checkpoint, inside a commit on the loop, is off) ...
    assert database_bytes > batches * 5 * 200
    # ... and the WAL restarted from its beginning instead of holding every commit's pages.
    assert wal_bytes < batches * 4096
    assert (await verify_chain(database, keys=KEYS)).records == batches * 5
    await database.dispose()


def test_record_timestamps_are_hashed_as_utc_microsecond_text() -> None:
    from datetime import timezone

    from medmesh.platform.audit.chain import _ts_text

    east = timezone(timedelta(hours=5, minutes=30))
    assert (
        _ts_text(datetime(2026, 11, 26, 20, 0, 1, 5, tzinfo=east)) == "2026-11-26T14:30:01.000005Z"
    )
    assert _ts_text(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2026-01-02T03:04:05.000000Z"


def test_the_sqlite_appender_binds_values_as_the_column_types_do(tmp_path: Path) -> None:
    appender = SqliteAppender(f"sqlite+medmesh:///{tmp_path}/audit.db")
    dialect = sqlite_dialect.dialect(json_serializer=_json_text)
    records = [
        read(1),
        AuditRecord(action="auth.login", outcome="failure", details={}),
        AuditRecord(
            action="fhir.search",
            roles=("r", "ü"),
            patient_ids=["p-b", "p-a"],
            purpose="emergency",
            details={"n": None, "nested": {"z": [1, 2.5, "é"], "a": True}},
            ts=datetime(2026, 12, 4, 18, 0, 0, 123456, tzinfo=UTC),
        ),
    ]
    rows = [_row(record, "phi") for record in records]
    link(rows, 0, GENESIS_HASH, KEYS.active)
    for row in rows:
        expected = []
        for column in AuditEntry.__table__.columns:
            process = column.type.dialect_impl(dialect).bind_processor(dialect)
            expected.append(process(row[column.name]) if process else row[column.name])
        assert appender.values(row) == expected
