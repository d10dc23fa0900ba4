"""Migration 0009: the search index tables and the versions are keyed by the resource id first,
as the models say, on SQLite (still ``WITHOUT ROWID``) and PostgreSQL; the rows stored before
are kept, both ways."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Connection, inspect, text

from medmesh.phi.migrations import SCRIPT_LOCATION
from medmesh.phi.models import PhiBase, ResourceVersionRow
from medmesh.phi.search.models import INDEX_TABLES
from medmesh.platform.db import create_unpooled_engine, dispose_engine
from medmesh.platform.db.migrations import alembic_config

NOW = datetime(2026, 12, 6, 7, tzinfo=UTC)
ROWS: dict[str, tuple[Any, ...]] = {
    "search_strings": ("Patient", "p1", "family", "tok", True),
    "search_tokens": ("Observation", "o1", "code", "http://loinc.org", "8867-4"),
    "search_dates": ("Observation", "o1", "date", NOW, NOW),
    "search_references": ("Observation", "o1", "subject", "Patient", "p1"),
    "resource_versions": ("Patient", "p1", 1, NOW, "POST", False, "p1", b"sealed"),
}
TYPE_FIRST = {
    "search_strings": ["resource_type", "resource_id", "param", "token"],
    "search_tokens": ["resource_type", "resource_id", "param", "system", "code"],
    "search_dates": ["resource_type", "resource_id", "param", "low", "high"],
    "search_references": ["resource_type", "resource_id", "param", "target_type", "target_id"],
    "resource_versions": ["resource_type", "id", "version"],
}
ID_FIRST = {table: [key[1], key[0], *key[2:]] for table, key in TYPE_FIRST.items()}


@pytest.fixture
def database_upgrade() -> None:
    """These tests migrate step by step from an empty database."""
    return None


async def _migrate(url: str, to: str, *, down: bool = False, seed: bool = False) -> dict[str, Any]:
    """Migrate ``url`` to revision ``to``: each table's key, rows and options there (then,
    with ``seed``, a row stored in each of :data:`ROWS`' tables)."""
    engine = create_unpooled_engine(url)

    def run(connection: Connection) -> dict[str, Any]:
        config = alembic_config(SCRIPT_LOCATION, url)
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, to)
        found = inspect(connection)
        state: dict[str, Any] = {}
        for table in ROWS:
            rows = connection.execute(text(f"SELECT * FROM {table}")).all()
            key = found.get_pk_constraint(table)
            state[table] = (key["name"], key["constrained_columns"], len(rows))
        state["indexes"] = sorted(
            index["name"] for table in ROWS for index in found.get_indexes(table)
        )
        if connection.dialect.name == "sqlite":
            state["without_rowid"] = sorted(
                name
                for name, sql in connection.execute(
                    text("SELECT name, sql FROM sqlite_master WHERE type = 'table'")
                )
                if sql.rstrip().endswith("WITHOUT ROWID")
            )
        return state

    try:
        async with engine.begin() as conn:
            state = await conn.run_sync(run)
            for table, row in ROWS.items() if seed else ():
                marks = ", ".join(f":v{i}" for i in range(len(row)))
                values = {f"v{i}": value for i, value in enumerate(row)}
                await conn.execute(text(f"INSERT INTO {table} VALUES ({marks})"), values)
            return state
    finally:
        await dispose_engine(engine)


async def test_migration_0009_keys_rows_by_id_first_and_goes_back(database_url: str) -> None:
    before = await _migrate(database_url, "0008", seed=True)
    up = await _migrate(database_url, "head")
    down = await _migrate(database_url, "0008", down=True)

    for table in ROWS:
        assert before[table] == (f"pk_{table}", TYPE_FIRST[table], 0)
        assert up[table] == (f"pk_{table}", ID_FIRST[table], 1)
        assert down[table] == (f"pk_{table}", TYPE_FIRST[table], 1)
    # The lookup indexes are kept, and on SQLite the index tables stay without rowid.
    assert up["indexes"] == down["indexes"] == before["indexes"]
    assert "ix_search_tokens_lookup" in up["indexes"]
    if "without_rowid" in up:
        search = sorted(table for table in ROWS if table.startswith("search_"))
        assert up["without_rowid"] == down["without_rowid"] == search


def test_the_models_keys_are_the_migrated_ones() -> None:
    tables = PhiBase.metadata.tables
    assert {model.__tablename__ for model in (*INDEX_TABLES, ResourceVersionRow)} == set(ID_FIRST)
    for name, key in ID_FIRST.items():
        assert [c.name for c in tables[name].primary_key] == key
