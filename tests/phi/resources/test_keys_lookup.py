"""Finding many resources by ``(type, id)``: the right rows, through the primary key.

A chunk of an NDJSON import asks which of its resources exist; ``_include`` and
``$everything`` read many resources at once. On SQLite a row-value ``IN`` list scanned every
current row (a cost that grew with the store); ``keys_clause`` asks per type.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select, text
from sqlalchemy.dialects import sqlite

from medmesh.phi.bulk_import.repository import ImportRepository
from medmesh.phi.bundles.repository import BundleRepository
from medmesh.phi.components import PhiState
from medmesh.phi.migrations import upgrade
from medmesh.phi.models import ResourceRow
from medmesh.phi.resources.repository import ResourceRepository, keys_clause
from medmesh.platform.db import Database
from tests.phi.conftest import PhiHarness


async def _store(phi: PhiHarness) -> None:
    for n in range(3):
        for resource in (
            {"resourceType": "Patient", "id": f"p{n}", "gender": "other"},
            {"resourceType": "Group", "id": f"p{n}", "type": "person", "actual": True},
        ):
            put = await phi.http.put(
                f"/fhir/{resource['resourceType']}/p{n}", json=resource, headers=phi.headers()
            )
            assert put.status_code == 201, put.text
    deleted = await phi.http.delete("/fhir/Group/p2", headers=phi.headers())
    assert deleted.status_code == 204


async def test_many_keys_of_several_types_find_their_rows(phi: PhiHarness) -> None:
    await _store(phi)
    wanted = {
        ("Patient", "p0"),
        ("Patient", "p2"),
        ("Group", "p2"),
        ("Group", "p1"),
        ("Patient", "x"),
    }
    database = PhiState.of(phi.app).database

    async with database.unit_of_work() as session:
        present = await ImportRepository(session).present(wanted)
        current = await ResourceRepository(session).get_many(sorted(wanted))
        everything = await BundleRepository(session).current_many(sorted(wanted))

    # The deleted Group/p2 is present (a new version would follow it), but not current.
    assert present == {("Patient", "p0"), ("Patient", "p2"), ("Group", "p2"), ("Group", "p1")}
    assert sorted((r.resource_type, r.id) for r in current) == [
        ("Group", "p1"),
        ("Patient", "p0"),
        ("Patient", "p2"),
    ]
    assert sorted((r.resource_type, r.id) for r in everything) == sorted(
        (r.resource_type, r.id) for r in current
    )


async def test_sqlite_searches_the_primary_key_for_each_type(tmp_path: Path) -> None:
    """A plan of SQLite's, on phi's tables as its migrations make them."""
    url = f"sqlite+medmesh:///{tmp_path}/phi.db"
    await upgrade(url)
    database = Database(url)
    stmt = select(ResourceRow.id).where(
        keys_clause([("Patient", "p0"), ("Group", "p1"), ("Patient", "p2")])
    )
    compiled = stmt.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True})

    try:
        async with database.unit_of_work() as session:
            plan = (await session.execute(text(f"EXPLAIN QUERY PLAN {compiled}"))).all()
    finally:
        await database.dispose()

    details = [row[-1] for row in plan]
    assert [d for d in details if d.startswith(("SEARCH", "SCAN"))] == [
        "SEARCH resources USING COVERING INDEX sqlite_autoindex_resources_1 (resource_type=? AND id=?)",
        "SEARCH resources USING COVERING INDEX sqlite_autoindex_resources_1 (resource_type=? AND id=?)",
    ]
