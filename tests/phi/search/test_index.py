"""The index follows every write: updates replace rows, deletes drop them, deferred blocks batch."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from medmesh.phi.migrations import upgrade
from medmesh.phi.search.repository import SearchRepository, pending_rows
from tests.phi.conftest import PhiHarness
from tests.phi.search.support import ids, patient, search


async def test_updates_replace_and_deletes_remove_index_rows(phi: PhiHarness) -> None:
    p = await phi.create(patient("Before", mrn="OLD-1"))
    changed = {**p, "name": [{"family": "After"}], "identifier": [{"value": "NEW-1"}]}
    response = await phi.http.put(f"/fhir/Patient/{p['id']}", json=changed, headers=phi.headers())
    assert response.status_code == 200
    assert ids(await search(phi, "Patient?family=before")) == []
    assert ids(await search(phi, "Patient?identifier=OLD-1")) == []
    assert ids(await search(phi, "Patient?family=after")) == [p["id"]]
    assert (
        await phi.http.delete(f"/fhir/Patient/{p['id']}", headers=phi.headers())
    ).status_code == 204
    assert ids(await search(phi, "Patient?family=after")) == []
    assert ids(await search(phi, "Patient")) == []


async def test_deferred_writes_are_searchable_within_and_after_the_block(phi: PhiHarness) -> None:
    components = phi.app.state.phi
    async with phi.app.state.database.unit_of_work() as session, components.index.deferred(session):
        first, _ = await components.resources.write(
            session, patient("Deferred", mrn="D-1"), method="POST"
        )
        second, _ = await components.resources.write(
            session, patient("Deferred", mrn="D-2"), method="POST"
        )
        updated = {**second.resource, "identifier": [{"value": "D-3"}]}
        await components.resources.write(session, updated, resource_id=second.id)
        assert pending_rows(session)
        # a search inside the block inserts what is pending first
        assert await SearchRepository(session).ids("Patient", [], 10)
        assert not pending_rows(session)
        third, _ = await components.resources.write(
            session, patient("Deferred", mrn="D-4"), method="POST"
        )
        await components.resources.write(
            session, {**third.resource, "gender": "male"}, resource_id=third.id
        )
    assert set(ids(await search(phi, "Patient?family=deferred"))) == {first.id, second.id, third.id}
    assert ids(await search(phi, "Patient?identifier=D-2")) == []
    assert ids(await search(phi, "Patient?identifier=D-3")) == [second.id]
    assert ids(await search(phi, "Patient?gender=male")) == [third.id]


async def test_upgrading_keeps_the_index_and_drops_sqlites_rowid(tmp_path: Path) -> None:
    path = tmp_path / "phi.db"
    url = f"sqlite+medmesh:///{path}"
    await upgrade(url, "0002")  # the index tables as first released
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO search_strings VALUES ('Patient', 'p1', 'family', 'tok')")
    await upgrade(url)
    with closing(sqlite3.connect(path)) as conn:
        rows = conn.execute("SELECT * FROM search_strings").fetchall()
        tables = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name LIKE 'search_%'"
        ).fetchall()
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    # the row is kept, and stays in the lookup index (0007: rows stored before are all indexed)
    assert rows == [("Patient", "p1", "family", "tok", 1)]
    assert len(tables) == 4
    assert all(sql.rstrip().endswith("WITHOUT ROWID") for _, sql in tables)
    assert {"ix_search_strings_lookup", "ix_search_dates_low", "ix_search_dates_high"} <= indexes


def test_migration_0007_keeps_rows_indexed_and_goes_back(tmp_path: Path) -> None:
    import asyncio

    from alembic import command

    from medmesh.phi.migrations import SCRIPT_LOCATION
    from medmesh.platform.db.migrations import alembic_config

    path = tmp_path / "phi.db"
    url = f"sqlite+medmesh:///{path}"
    asyncio.run(upgrade(url, "0006"))
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO search_strings VALUES ('Patient', 'p1', 'family', 'tok')")
    asyncio.run(upgrade(url))

    def index_sql(conn: sqlite3.Connection) -> str:
        row = conn.execute(
            "SELECT sql FROM sqlite_master WHERE name = 'ix_search_strings_lookup'"
        ).fetchone()
        return str(row[0])

    with closing(sqlite3.connect(path)) as conn:
        up = conn.execute("SELECT * FROM search_strings").fetchall()
        up_index = index_sql(conn)
    command.downgrade(alembic_config(SCRIPT_LOCATION, url), "0006")
    with closing(sqlite3.connect(path)) as conn:
        down = conn.execute("SELECT * FROM search_strings").fetchall()
        down_index = index_sql(conn)

    assert up == [("Patient", "p1", "family", "tok", 1)]
    assert up_index.endswith(
        '(resource_type, param, token, resource_id, "indexed") WHERE indexed = 1'
    )
    assert down == [("Patient", "p1", "family", "tok")]
    assert down_index.endswith("(resource_type, param, token, resource_id)")
