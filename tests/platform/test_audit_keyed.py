"""The audit chain against an insider who can write the database: keyed links, signed checkpoints.

The attacks are the ones a DBA can make: edit a record and re-link the rest with SHA-256 (or with
a key of their own), delete the newest records and move the head, re-link the whole chain as
plain SHA-256, forge a checkpoint line. Each is named by ``verify_chain``.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import select, text, update

from medmesh.platform.audit import (
    AuditChainHead,
    AuditEntry,
    AuditKeys,
    AuditRecord,
    AuditSealing,
    AuditTrail,
    CheckpointLog,
    SqliteAppender,
    append_batch,
    ensure_audit_tables,
    load_audit_keys,
    read_checkpoints,
    record_hash,
    verify_chain,
)
from medmesh.platform.config import ServiceSettings
from medmesh.platform.db import Base, Database, utcnow
from medmesh.platform.logging import configure_logging
from medmesh.platform.testing import LogLines

KEYS = AuditKeys.generate("k1")


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_url)
    async with db.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    try:
        yield db
    finally:
        await db.dispose()


def read(n: int) -> AuditRecord:
    return AuditRecord(
        action="fhir.read",
        actor="u-1",
        patient_ids=["p-1"],
        resource_type="Patient",
        resource_id=f"p-{n}",
        request_id=f"req-{n}",
        details={"n": n},
    )


async def write(
    database: Database,
    count: int,
    *,
    keys: AuditKeys | None = KEYS,
    checkpoints: CheckpointLog | None = None,
    start: int = 0,
) -> None:
    """``count`` records, one at a time (one batch each), then the trail stops."""
    sealing = AuditSealing(keys, checkpoints) if keys is not None else None
    trail = AuditTrail(database, "phi", sealing=sealing)
    await trail.start()
    try:
        for n in range(start, start + count):
            await trail.record(read(n))
    finally:
        await trail.stop()


async def entries(database: Database) -> list[AuditEntry]:
    async with database.sessionmaker() as session:
        return list((await session.scalars(select(AuditEntry).order_by(AuditEntry.seq))).all())


def _row(entry: AuditEntry) -> dict[str, Any]:
    return {c.name: getattr(entry, c.name) for c in AuditEntry.__table__.columns}


async def relink(
    database: Database,
    from_seq: int,
    *,
    key: AuditKeys | None,
    keep_key_id: bool = True,
    edit: dict[str, Any] | None = None,
    through: int | None = None,
) -> None:
    """The insider's rewrite: edit record ``from_seq`` and recompute every later link up to
    ``through`` (plain SHA-256 when ``key`` is None, else an HMAC under ``key``), then move
    the head."""
    rows = [_row(e) for e in await entries(database)]
    prev = rows[from_seq - 2]["hash"] if from_seq > 1 else "0" * 64
    rows[from_seq - 1].update(edit or {})
    link_key = key.active if key is not None else None
    async with database.engine.begin() as conn:
        for row in rows[from_seq - 1 : through]:
            row["prev_hash"] = prev
            if link_key is not None:
                row["key_id"] = link_key.kid
            elif not keep_key_id:
                row["key_id"] = None
            row["hash"] = prev = record_hash(prev, row, link_key)
            await conn.execute(
                update(AuditEntry)
                .where(AuditEntry.seq == row["seq"])
                .values({k: v for k, v in row.items() if k != "seq"})
            )
        await conn.execute(
            update(AuditChainHead).where(AuditChainHead.id == 1).values(last_hash=prev)
        )


async def delete_tail(database: Database, keep: int) -> None:
    """Delete every record after ``keep`` and move the head onto record ``keep``."""
    last = (await entries(database))[keep - 1]
    async with database.engine.begin() as conn:
        await conn.execute(text("DELETE FROM audit_log WHERE seq > :keep"), {"keep": keep})
        await conn.execute(
            update(AuditChainHead)
            .where(AuditChainHead.id == 1)
            .values(last_seq=keep, last_hash=last.hash)
        )


async def test_a_deleted_tail_with_a_moved_head_is_named_by_its_checkpoint(
    database: Database, tmp_path: Path
) -> None:
    path = tmp_path / "phi-audit-checkpoints.jsonl"
    log = CheckpointLog(path, KEYS, every_records=5, every_seconds=3600)
    await write(database, 12, checkpoints=log)  # checkpoints at 5, 10, and 12 when it stops
    checkpoints = read_checkpoints(path)
    assert [(c.line, c.seq, c.records) for c in checkpoints] == [
        (1, 5, 5),
        (2, 10, 10),
        (3, 12, 12),
    ]
    report = await verify_chain(database, keys=KEYS, checkpoints=checkpoints, service="phi")
    assert (report.ok, report.records, report.checkpoints, report.anchored_seq) == (
        True,
        12,
        3,
        12,
    )

    await delete_tail(database, keep=10)

    assert (await verify_chain(database, keys=KEYS)).ok  # the chain alone cannot tell
    report = await verify_chain(database, keys=KEYS, checkpoints=checkpoints, service="phi")
    assert (report.ok, report.records, report.checkpoint_line, report.first_bad_seq) == (
        False,
        10,
        3,
        12,
    )
    assert report.problem == (
        f"checkpoint line 3 (record 12, {checkpoints[2].at}) is beyond the last record 10: "
        "records were deleted at the tail"
    )


@pytest.mark.parametrize("keep_key_id", [True, False])
async def test_an_edit_relinked_with_sha256_is_named(database: Database, keep_key_id: bool) -> None:
    await write(database, 10)

    await relink(database, 4, key=None, keep_key_id=keep_key_id, edit={"actor": "someone-else"})

    report = await verify_chain(database, keys=KEYS)
    assert (report.ok, report.first_bad_seq, report.checkpoint_line) == (False, 4, None)
    assert report.problem == (
        "record 4 does not match its HMAC link (changed or re-linked)"
        if keep_key_id
        else "record 4 has a plain SHA-256 link after keyed record 1 (rewritten)"
    )


async def test_an_edit_relinked_with_another_key_is_named(database: Database) -> None:
    await write(database, 10)

    await relink(database, 6, key=AuditKeys.generate("k1"), edit={"outcome": "failure"})
    report = await verify_chain(database, keys=KEYS)
    assert (report.ok, report.first_bad_seq) == (False, 6)
    assert report.problem == "record 6 does not match its HMAC link (changed or re-linked)"

    await relink(database, 6, key=AuditKeys.generate("mine"))
    report = await verify_chain(database, keys=KEYS)
    assert (report.ok, report.first_bad_seq) == (False, 6)
    assert report.problem == "record 6 is linked with key 'mine', which is not configured"


async def test_a_chain_relinked_as_legacy_is_named_by_a_checkpoint(
    database: Database, tmp_path: Path
) -> None:
    path = tmp_path / "checkpoints.jsonl"
    await write(database, 6, checkpoints=CheckpointLog(path, KEYS, every_records=3))
    checkpoints = read_checkpoints(path)

    # Every record turned into a plain SHA-256 record: a chain of "records written before keys".
    await relink(database, 1, key=None, keep_key_id=False, edit={"actor": "someone-else"})

    assert (await verify_chain(database, keys=KEYS)).ok
    report = await verify_chain(database, keys=KEYS, checkpoints=checkpoints)
    assert (report.ok, report.checkpoint_line, report.first_bad_seq) == (False, 1, 3)
    assert report.problem == (
        f"checkpoint line 1 (record 3, {checkpoints[0].at}) no longer matches record 3: "
        "the chain was rewritten"
    )


async def test_a_forged_checkpoint_line_is_named(database: Database, tmp_path: Path) -> None:
    path = tmp_path / "checkpoints.jsonl"
    await write(database, 4, checkpoints=CheckpointLog(path, KEYS, every_records=2))
    lines = path.read_bytes().splitlines()
    assert len(lines) == 2
    # The insider moves the last checkpoint back to hide records they are about to delete.
    forged = orjson.loads(lines[1])
    forged.update(seq=3, records=3)
    path.write_bytes(lines[0] + b"\n" + orjson.dumps(forged) + b"\n")

    report = await verify_chain(database, keys=KEYS, checkpoints=read_checkpoints(path))
    assert (report.ok, report.checkpoint_line, report.first_bad_seq) == (False, 2, 3)
    assert report.problem == (
        "checkpoint line 2 (record 3) does not match its signature (forged or changed)"
    )


async def test_rotated_keys_still_verify(database: Database, tmp_path: Path) -> None:
    old, new = AuditKeys.generate("old"), AuditKeys.generate("new")
    rotated = AuditKeys.parse(f"{_setting(new)},{_setting(old)}")
    path = tmp_path / "checkpoints.jsonl"
    await write(database, 3, keys=old, checkpoints=CheckpointLog(path, old, every_records=3))
    await write(database, 3, keys=rotated, checkpoints=CheckpointLog(path, rotated), start=3)

    stored = await entries(database)
    assert [e.key_id for e in stored] == ["old"] * 3 + ["new"] * 3
    checkpoints = read_checkpoints(path)
    assert [(c.seq, c.kid) for c in checkpoints] == [(3, "old"), (6, "new")]
    report = await verify_chain(database, keys=rotated, checkpoints=checkpoints)
    assert (report.ok, report.records, report.checkpoints) == (True, 6, 2)

    # The old key dropped too early: its records can no longer be verified.
    report = await verify_chain(database, keys=new)
    assert (report.ok, report.first_bad_seq) == (False, 1)
    assert report.problem == "record 1 is linked with key 'old', which is not configured"


async def test_records_written_before_keys_verify_as_a_prefix(database: Database) -> None:
    await write(database, 3, keys=None)
    await write(database, 3, start=3)

    assert [e.key_id for e in await entries(database)] == [None] * 3 + ["k1"] * 3
    report = await verify_chain(database, keys=KEYS)
    assert (report.ok, report.records) == (True, 6)

    # The prefix is anchored by the first keyed record, which links to its last hash.
    await relink(database, 2, key=None, edit={"actor": "someone-else"}, through=3)
    report = await verify_chain(database, keys=KEYS)
    assert (report.ok, report.first_bad_seq) == (False, 4)
    assert report.problem == "record 4 does not link to record 3"


async def test_a_checkpoint_is_written_when_records_wait_longer_than_its_interval(
    database: Database, tmp_path: Path, log_lines: LogLines
) -> None:
    path = tmp_path / "checkpoints.jsonl"
    configure_logging("phi")
    log = CheckpointLog(path, KEYS, every_records=1000, every_seconds=0.05)
    trail = AuditTrail(database, "phi", sealing=AuditSealing(KEYS, log))
    await trail.start()
    try:
        await trail.record(read(0))
        for _ in range(400):  # no further record: the idle writer writes it when it falls due
            if path.exists():
                break
            await asyncio.sleep(0.05)
        checkpoints = read_checkpoints(path)
    finally:
        await trail.stop()
    assert [(c.seq, c.service, c.kid) for c in checkpoints] == [(1, "phi", "k1")]
    assert len(read_checkpoints(path)) == 1  # stopping adds none: nothing new to cover
    logged = [line for line in log_lines.records() if line["event"] == "audit_checkpoint"]
    assert [(line["seq"], line["head"], line["sig"]) for line in logged] == [
        (1, checkpoints[0].head, checkpoints[0].sig)
    ]


async def test_sqlite_appender_links_as_append_batch_does(tmp_path: Path) -> None:
    fast = Database(f"sqlite+medmesh:///{tmp_path / 'fast-audit.db'}")
    plain = Database(f"sqlite+medmesh:///{tmp_path / 'plain-audit.db'}")
    for db in (fast, plain):
        await ensure_audit_tables(db)
    ts = utcnow()
    batches = [[_fresh_row(n, ts) for n in range(i * 3, i * 3 + 3)] for i in range(3)]
    appender = SqliteAppender(fast.url)
    try:
        for batch in batches:
            await appender.append([dict(r) for r in batch], KEYS.active)
            async with plain.engine.begin() as conn:
                await conn.run_sync(append_batch, [dict(r) for r in batch], KEYS.active)
        assert [_row(e) for e in await entries(fast)] == [_row(e) for e in await entries(plain)]
        for db in (fast, plain):
            assert (await verify_chain(db, keys=KEYS)).records == 9
    finally:
        await appender.close()
        await fast.dispose()
        await plain.dispose()


async def test_an_audit_file_of_an_older_release_gains_the_key_column(tmp_path: Path) -> None:
    database = Database(f"sqlite+medmesh:///{tmp_path / 'old-audit.db'}")
    try:
        await ensure_audit_tables(database)
        await write(database, 2, keys=None)
        async with database.engine.begin() as conn:  # the file as the release before left it
            await conn.execute(text("ALTER TABLE audit_log DROP COLUMN key_id"))

        await ensure_audit_tables(database)
        await write(database, 2, start=2)

        assert [e.key_id for e in await entries(database)] == [None, None, "k1", "k1"]
        assert (await verify_chain(database, keys=KEYS)).records == 4
    finally:
        await database.dispose()


class _Settings(ServiceSettings):
    service_name = "phi"


def test_development_generates_the_key_once_and_production_refuses_without_one(
    tmp_path: Path,
) -> None:
    settings = _Settings(var_dir=tmp_path)
    assert load_audit_keys(settings, create=False) is None
    first = load_audit_keys(settings)
    assert first is not None
    assert (tmp_path / "phi-audit.key").stat().st_mode & 0o777 == 0o600
    again = load_audit_keys(settings, create=False)
    assert again is not None
    assert again.kids == first.kids == ("dev1",)
    assert again.active.mac(b"x") == first.active.mac(b"x")

    with pytest.raises(RuntimeError, match="MEDMESH_PHI_AUDIT_KEYS must be set in production"):
        load_audit_keys(_Settings(var_dir=tmp_path, environment="production"))
    configured = load_audit_keys(
        _Settings(environment="production", audit_keys=_setting(KEYS) + ",old:" + "A" * 43)
    )
    assert configured is not None
    assert configured.kids == ("k1", "old")


def test_a_link_is_an_hmac_not_a_hash() -> None:
    row = _fresh_row(1, utcnow())
    row.update(seq=1, key_id=None)
    plain = record_hash("0" * 64, row)
    keyed = record_hash("0" * 64, row, KEYS.active)
    assert plain == hashlib.sha256(b"0" * 64 + _canonical(row)).hexdigest()
    assert keyed != plain
    assert keyed != record_hash("0" * 64, row, AuditKeys.generate("k1").active)


def _canonical(row: dict[str, Any]) -> bytes:
    from medmesh.platform.audit.chain import _HASHED_FIELDS, _ts_text

    body = {name: row[name] for name in _HASHED_FIELDS}
    body["ts"] = _ts_text(body["ts"])
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


def _fresh_row(n: int, ts: Any) -> dict[str, Any]:
    return {
        "ts": ts,
        "service": "phi",
        "action": "fhir.read",
        "outcome": "success",
        "actor": "u-1",
        "client_id": None,
        "roles": ["clinician"],
        "patient_ids": ["p-1"],
        "resource_type": "Patient",
        "resource_id": f"p-{n}",
        "source_ip": None,
        "purpose": None,
        "request_id": None,
        "details": {"n": n},
    }


def _setting(keys: AuditKeys) -> str:
    return keys.to_setting()
