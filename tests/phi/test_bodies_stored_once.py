"""Each version's body is stored once (migration 0008): the current row reads its version's."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from pathlib import Path

from alembic import command
from sqlalchemy import select, text

from medmesh.phi.migrations import SCRIPT_LOCATION, upgrade
from medmesh.phi.models import ResourceRow
from medmesh.platform.db import Database
from medmesh.platform.db.migrations import alembic_config
from tests.phi.conftest import PhiHarness

NOW = "2026-12-05T10:00:00.000000Z"


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]


def test_migration_0008_drops_the_current_copy_and_goes_back(tmp_path: Path) -> None:
    path = tmp_path / "phi.db"
    url = f"sqlite+medmesh:///{path}"
    asyncio.run(upgrade(url, "0007"))
    with closing(sqlite3.connect(path)) as conn, conn:
        versions = [
            ("Patient", "p1", 1, "POST", 0, b"sealed-1"),
            ("Patient", "p1", 2, "PUT", 0, b"sealed-2"),
            ("Patient", "p2", 1, "POST", 0, b"sealed-3"),
            ("Patient", "p2", 2, "DELETE", 1, None),
        ]
        conn.executemany(
            "INSERT INTO resource_versions (resource_type, id, version, last_updated, method,"
            " deleted, patient_id, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(t, i, n, NOW, m, d, i, b) for t, i, n, m, d, b in versions],
        )
        conn.executemany(
            "INSERT INTO resources (resource_type, id, version, last_updated, deleted,"
            " patient_id, body) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                ("Patient", "p1", 2, NOW, 0, "p1", b"sealed-2"),
                ("Patient", "p2", 2, NOW, 1, "p2", None),
            ],
        )
    asyncio.run(upgrade(url))

    async def bodies() -> list[tuple[str, int, bytes | None]]:
        database = Database(url)
        try:
            async with database.unit_of_work() as session:
                rows = await session.execute(
                    select(ResourceRow.id, ResourceRow.version, ResourceRow.body).order_by(
                        ResourceRow.id
                    )
                )
                return [(r[0], r[1], r[2]) for r in rows]
        finally:
            await database.dispose()

    read = asyncio.run(bodies())
    with closing(sqlite3.connect(path)) as conn:
        up_columns = _columns(conn, "resources")
    command.downgrade(alembic_config(SCRIPT_LOCATION, url), "0007")
    with closing(sqlite3.connect(path)) as conn:
        down = conn.execute("SELECT id, version, body FROM resources ORDER BY id").fetchall()

    assert "body" not in up_columns
    assert read == [("p1", 2, b"sealed-2"), ("p2", 2, None)]
    assert down == [("p1", 2, b"sealed-2"), ("p2", 2, None)]


async def test_a_body_is_stored_once_and_the_current_row_reads_it(phi: PhiHarness) -> None:
    created = await phi.create({"resourceType": "Patient", "name": [{"family": "Once"}]})
    created["gender"] = "female"
    updated = await phi.http.put(
        f"/fhir/Patient/{created['id']}", json=created, headers=phi.headers()
    )
    assert updated.status_code == 200, updated.text
    database: Database = phi.app.state.database
    async with database.unit_of_work() as session:
        stored = (
            await session.execute(
                text("SELECT version, body FROM resource_versions WHERE id = :id ORDER BY version"),
                {"id": created["id"]},
            )
        ).all()
        current = await session.scalar(
            select(ResourceRow.body).where(ResourceRow.id == created["id"])
        )
    read = await phi.http.get(f"/fhir/Patient/{created['id']}", headers=phi.headers())
    first = await phi.http.get(f"/fhir/Patient/{created['id']}/_history/1", headers=phi.headers())

    assert [version for version, _ in stored] == [1, 2]
    assert current == stored[1][1]
    assert read.json()["gender"] == "female"
    assert read.json()["meta"]["versionId"] == "2"
    assert "gender" not in first.json()
