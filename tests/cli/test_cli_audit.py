"""``medmesh audit verify``: the keyed chain and the signed checkpoints, as an operator sees them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
from sqlalchemy import text

from medmesh.platform.audit import AuditEntry, audit_database_for, list_records, record_hash
from tests.auth.conftest import AuthHarness, light_settings, run_auth
from tests.cli.commands import invoke


@pytest.fixture
async def auth(database_url: str, tmp_path: Path) -> AsyncIterator[AuthHarness]:
    settings = light_settings(database_url, tmp_path, audit_checkpoint_records=1)
    async with run_auth(settings) as harness:
        yield harness


def _env(auth: AuthHarness) -> dict[str, str]:
    return {
        "MEDMESH_AUTH_DATABASE_URL": auth.settings.effective_database_url,
        "MEDMESH_AUTH_VAR_DIR": str(auth.settings.var_dir),
        "MEDMESH_AUTH_KEY_ENCRYPTION_KEYS": auth.settings.key_encryption_keys,
    }


def _checkpoints(auth: AuthHarness) -> Path:
    return Path(auth.settings.var_dir) / "auth-audit-checkpoints.jsonl"


async def _checkpointed(auth: AuthHarness, seq: int) -> list[bytes]:
    """The checkpoint file's lines once one covers record ``seq`` (the writer appends it just
    after the record's commit, so after the response)."""
    path = _checkpoints(auth)
    for _ in range(200):
        lines = path.read_bytes().splitlines() if path.exists() else []
        if lines and orjson.loads(lines[-1])["seq"] >= seq:
            return lines
        await asyncio.sleep(0.05)
    raise AssertionError(f"no checkpoint covers record {seq}")


async def _execute(auth: AuthHarness, *statements: tuple[str, dict[str, object]]) -> None:
    audit_db = audit_database_for(auth.database)
    try:
        async with audit_db.engine.begin() as conn:
            for statement, params in statements:
                await conn.execute(text(statement), params)
    finally:
        if audit_db is not auth.database:
            await audit_db.dispose()


async def test_verify_names_the_checkpoint_beyond_a_deleted_tail(auth: AuthHarness) -> None:
    await auth.token()
    await auth.login()
    await auth.login(password="wrong password")
    events = await auth.audit_events()
    last = max(e["seq"] for e in events)
    lines = await _checkpointed(auth, last)
    assert orjson.loads(lines[-1])["seq"] == last
    ok = await invoke(["audit", "verify", "auth"], _env(auth))
    assert ok.exit_code == 0, ok.output
    assert ok.output == (
        f"auth: audit trail intact ({last} records; {len(lines)} checkpoints in "
        f"{_checkpoints(auth)}, 0 records after the last one)\n"
    )

    # The insider deletes the last record and moves the head onto the one before.
    keep = next(e for e in events if e["seq"] == last - 1)
    await _execute(
        auth,
        ("DELETE FROM audit_log WHERE seq = :seq", {"seq": last}),
        (
            "UPDATE audit_chain_head SET last_seq = :seq, last_hash = :hash",
            {"seq": last - 1, "hash": keep["hash"]},
        ),
    )
    broken = await invoke(["audit", "verify", "auth"], _env(auth))
    assert broken.exit_code == 1, broken.output
    line = next(n for n, raw in enumerate(lines, 1) if orjson.loads(raw)["seq"] == last)
    at = orjson.loads(lines[line - 1])["at"]
    assert broken.output == (
        f"auth: audit trail BROKEN at checkpoint line {line} of {_checkpoints(auth)}: "
        f"checkpoint line {line} (record {last}, {at}) is beyond the last record {last - 1}: "
        "records were deleted at the tail\n"
    )


async def test_verify_names_a_record_relinked_with_sha256(auth: AuthHarness) -> None:
    await auth.token()
    await auth.login()
    await auth.login(password="wrong password")
    # The insider edits the first record and re-links it and every later one with SHA-256.
    audit_db = audit_database_for(auth.database)
    try:
        rows = [
            {c.name: getattr(e, c.name) for c in AuditEntry.__table__.columns}
            for e in await list_records(audit_db, limit=1000)
        ]
        rows[0]["outcome"] = "failure"
        prev = rows[0]["prev_hash"]
        async with audit_db.engine.begin() as conn:
            for row in rows:
                row["prev_hash"], row["hash"] = prev, record_hash(prev, row)
                prev = row["hash"]
                await conn.execute(
                    text(
                        "UPDATE audit_log SET outcome = :outcome, prev_hash = :prev_hash, "
                        "hash = :hash WHERE seq = :seq"
                    ),
                    {k: row[k] for k in ("outcome", "prev_hash", "hash", "seq")},
                )
            await conn.execute(text("UPDATE audit_chain_head SET last_hash = :h"), {"h": prev})
    finally:
        if audit_db is not auth.database:
            await audit_db.dispose()

    broken = await invoke(["audit", "verify", "auth"], _env(auth))
    assert broken.exit_code == 1, broken.output
    assert broken.output == (
        "auth: audit trail BROKEN at record 1: record 1 does not match its HMAC link "
        "(changed or re-linked)\n"
    )


async def test_verify_names_a_forged_checkpoint_given_by_path(
    auth: AuthHarness, tmp_path: Path
) -> None:
    await auth.token()
    events = await auth.audit_events()
    lines = await _checkpointed(auth, max(e["seq"] for e in events))
    forged = orjson.loads(lines[-1])
    forged["seq"] += 5
    elsewhere = tmp_path / "shipped" / "auth-checkpoints.jsonl"
    elsewhere.parent.mkdir()
    elsewhere.write_bytes(b"\n".join([*lines, orjson.dumps(forged)]) + b"\n")

    broken = await invoke(["audit", "verify", "auth", "--checkpoints", str(elsewhere)], _env(auth))
    assert broken.exit_code == 1, broken.output
    n = len(lines) + 1
    assert broken.output == (
        f"auth: audit trail BROKEN at checkpoint line {n} of {elsewhere}: checkpoint line {n} "
        f"(record {forged['seq']}) does not match its signature (forged or changed)\n"
    )

    elsewhere.write_bytes(b"\n".join([*lines, b"not json"]) + b"\n")
    broken = await invoke(["audit", "verify", "auth", "--checkpoints", str(elsewhere)], _env(auth))
    assert broken.exit_code == 1, broken.output
    assert broken.output == (
        f"auth: audit trail BROKEN at checkpoint line {n}: is not JSON in {elsewhere}\n"
    )
