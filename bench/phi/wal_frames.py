"""WAL frames a resource of a transaction Bundle writes on SQLite, table by table (decision 0059).

A commit writes to the WAL one frame for every page it changed, and the checkpoint copies each
of them again: the frames a resource costs decide much of a bulk write's time, and unlike a
rate they do not depend on the machine's speed. This loads the transaction Bundles of
``bench_import`` (6,210 Synthea resources) into phi with two preparation workers, then replays
the rows phi stored, Bundle by Bundle (a Bundle's resources share their ``lastUpdated``), into
empty databases migrated to each revision given (default: phi migration 0008, the keys type
first, and the head), one commit each ``--per-commit`` Bundles and a checkpoint after it, with
every table and with each table alone.

    .venv/bin/python bench/phi/wal_frames.py [--revisions 0008,head] [--per-commit 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench.phi import bench_import

#: The tables a new resource writes, with the column that holds its id.
TABLES = {
    "resources": "id",
    "resource_versions": "id",
    "search_strings": "resource_id",
    "search_tokens": "resource_id",
    "search_dates": "resource_id",
    "search_references": "resource_id",
}


def _bundles(source: sqlite3.Connection) -> list[list[str]]:
    """The stored resources' ids, Bundle by Bundle, in the order they were stored."""
    found: dict[str, list[str]] = {}
    for resource_id, updated in source.execute(
        "SELECT id, last_updated FROM resources ORDER BY rowid"
    ):
        found.setdefault(updated, []).append(resource_id)
    return list(found.values())


def _empty(path: Path, revision: str) -> None:
    from medmesh.phi.migrations import upgrade

    asyncio.run(upgrade(f"sqlite+medmesh:///{path}", revision))
    with sqlite3.connect(path) as db:  # the schema in the file itself, to copy
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def _frames(
    source: sqlite3.Connection,
    schema: Path,
    work: Path,
    tables: list[str],
    bundles: list[list[str]],
    per_commit: int,
) -> int:
    """The frames of replaying ``tables``' rows of ``bundles`` into a copy of ``schema``."""
    target = work / "replay.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    target.write_bytes(schema.read_bytes())
    db = sqlite3.connect(target, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA wal_autocheckpoint=0")
        columns = {t: [r[1] for r in source.execute(f"PRAGMA table_info({t})")] for t in tables}
        frames = 0
        for start in range(0, len(bundles), per_commit):
            ids = [i for bundle in bundles[start : start + per_commit] for i in bundle]
            marks = ", ".join("?" for _ in ids)
            db.execute("BEGIN IMMEDIATE")
            for table in tables:
                names = ", ".join(columns[table])
                rows = source.execute(
                    f"SELECT {names} FROM {table} WHERE {TABLES[table]} IN ({marks})",
                    ids,
                ).fetchall()
                values = ", ".join("?" for _ in columns[table])
                db.executemany(f"INSERT INTO {table} ({names}) VALUES ({values})", rows)
            db.execute("COMMIT")
            frames += int(db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1])
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return frames
    finally:
        db.close()


def main(revisions: list[str], per_commit: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="medmesh-bench-wal-frames-"))
    asyncio.run(bench_import.transaction(bench_import._copies(), work, 2))
    source = sqlite3.connect(f"file:{work / 'transaction-2.db'}?mode=ro", uri=True)
    bundles = _bundles(source)
    stored = sum(len(bundle) for bundle in bundles)
    report: dict[str, Any] = {"resources": stored, "bundles_per_commit": per_commit}
    for revision in revisions:
        schema = work / f"schema-{revision}.db"
        _empty(schema, revision)
        figures = {
            table: round(_frames(source, schema, work, [table], bundles, per_commit) / stored, 2)
            for table in TABLES
        }
        every = _frames(source, schema, work, list(TABLES), bundles, per_commit)
        figures["all_tables"] = round(every / stored, 2)
        report[f"frames_per_resource_at_{revision}"] = figures
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--revisions", default="0008,head")
    parser.add_argument("--per-commit", type=int, default=1)
    args = parser.parse_args()
    print(json.dumps(main(args.revisions.split(","), args.per_commit), indent=2))
