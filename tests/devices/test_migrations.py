"""The devices schema: migrated up it matches the models (and the platform's audit and outbox
tables) exactly; migrated down it is gone. On PostgreSQL migration 0003 partitions readings by
month and keeps their keys in reading_keys; the readings stored before it are kept, both ways."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.runtime.environment import NameFilterParentNames, NameFilterType
from sqlalchemy import Connection, MetaData, Table, insert, inspect, select, text

from medmesh.devices.migrations import SCRIPT_LOCATION
from medmesh.devices.models import DevicesBase, PostgresOnlyBase, ReadingRow, SqliteOnlyBase
from medmesh.devices.partitions import is_partition
from medmesh.platform import audit, outbox  # noqa: F401 - registers the platform tables
from medmesh.platform.db import Base, alembic_config, create_unpooled_engine, dispose_engine

T = TypeVar("T")


@pytest.fixture
def database_upgrade() -> None:
    """These tests migrate from an empty database."""
    return None


async def _migrating(database_url: str, work: Callable[[Connection, Any], T]) -> T:
    """``work(connection, config)`` in one transaction, with an Alembic config on it."""
    engine = create_unpooled_engine(database_url)

    def run(connection: Connection) -> T:
        config = alembic_config(SCRIPT_LOCATION, database_url)
        config.attributes["connection"] = connection
        return work(connection, config)

    try:
        async with engine.begin() as conn:
            return await conn.run_sync(run)
    finally:
        await dispose_engine(engine)


def _not_a_partition(
    name: str | None, type_: NameFilterType, parent_names: NameFilterParentNames
) -> bool:
    return type_ != "table" or not is_partition(name or "")


def _not_the_view(
    item: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """SQLite's ``readings`` is a view (migration 0005) that reflection does not see as the
    model's table; ``test_partitioning_keeps_the_stored_readings_both_ways`` checks what it reads."""
    table = name if type_ == "table" else getattr(getattr(item, "table", None), "name", None)
    return table != "readings"


@pytest.mark.postgres
async def test_the_migrations_build_the_models_and_come_down(database_url: str) -> None:
    def migrate(connection: Connection, config: Any) -> tuple[list[object], set[str], set[str]]:
        command.upgrade(config, "head")
        models: list[MetaData] = [DevicesBase.metadata, Base.metadata]
        opts: dict[str, Any] = {"compare_type": True, "include_name": _not_a_partition}
        if connection.dialect.name == "postgresql":
            models.append(PostgresOnlyBase.metadata)
        else:
            models.append(SqliteOnlyBase.metadata)
            opts["include_object"] = _not_the_view
        differences = compare_metadata(
            MigrationContext.configure(connection, opts=opts),
            models,  # type: ignore[arg-type]
        )
        up = set(inspect(connection).get_table_names()) | set(inspect(connection).get_view_names())
        command.downgrade(config, "base")
        down = set(inspect(connection).get_table_names()) | set(
            inspect(connection).get_view_names()
        )
        return differences, up, down

    differences, up, down = await _migrating(database_url, migrate)
    assert differences == []
    assert set(DevicesBase.metadata.tables) <= up
    assert not set(DevicesBase.metadata.tables) & down
    on_postgres = database_url.startswith("postgresql")
    assert ("reading_keys" in up) is on_postgres
    assert set(SqliteOnlyBase.metadata.tables) & up == (
        set() if on_postgres else {"reading_chunks", "reading_chunk_keys", "reading_chunk_sequence"}
    )
    assert not set(SqliteOnlyBase.metadata.tables) & down
    assert {name for name in up if is_partition(name)} == (
        {"readings_before_2000"} if on_postgres else set()
    )
    assert not {name for name in down if is_partition(name) or name == "reading_keys"}


READINGS = [
    ("dev_a", "r-1999", datetime(1999, 12, 31, 23, 59, tzinfo=UTC)),
    ("dev_a", "r-jan", datetime(2026, 1, 31, 23, 59, 59, tzinfo=UTC)),
    ("dev_a", "r-feb", datetime(2026, 2, 1, tzinfo=UTC)),
    ("dev_b", "r-feb", datetime(2026, 2, 14, 12, tzinfo=UTC)),
    ("dev_b", "r-mar", datetime(2026, 3, 1, 8, tzinfo=UTC)),
]


def _text(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def _stored(connection: Connection) -> list[tuple[Any, ...]]:
    table = ReadingRow.__table__
    assert isinstance(table, Table)
    rows = connection.execute(
        select(table.c.device_id, table.c.reading_id, table.c.ts, table.c.value).order_by(
            table.c.ts, table.c.device_id
        )
    )
    return [tuple(row) for row in rows]


@pytest.mark.postgres
async def test_partitioning_keeps_the_stored_readings_both_ways(database_url: str) -> None:
    def migrate(connection: Connection, config: Any) -> dict[str, Any]:
        command.upgrade(config, "0002")
        received = datetime(2026, 3, 2, tzinfo=UTC)
        table = ReadingRow.__table__
        assert isinstance(table, Table)
        connection.execute(
            insert(table),
            [
                {
                    "device_id": device_id,
                    "reading_id": reading_id,
                    "ts": ts,
                    "metric": "heart_rate",
                    "value": 60.0 + n,
                    "components": None,
                    "unit": "/min",
                    "patient_ref": "Patient/p1",
                    "received": received,
                }
                for n, (device_id, reading_id, ts) in enumerate(READINGS)
            ],
        )
        before = _stored(connection)
        command.upgrade(config, "head")
        seen: dict[str, Any] = {"before": before, "up": _stored(connection)}
        if connection.dialect.name == "postgresql":
            seen["partitions"] = connection.execute(
                text(
                    "SELECT tableoid::regclass::text, device_id, reading_id FROM readings"
                    " ORDER BY ts, device_id"
                )
            ).all()
            seen["keys"] = connection.execute(
                text("SELECT device_id, reading_id, ts FROM reading_keys ORDER BY ts, device_id")
            ).all()
            seen["kind_up"] = connection.execute(
                text("SELECT relkind::text FROM pg_class WHERE relname = 'readings'")
            ).scalar()
        else:
            seen["chunks"] = connection.execute(
                text(
                    "SELECT k.device_id, k.reading_id, c.count, c.first_ts, c.last_ts"
                    " FROM reading_chunk_keys AS k JOIN reading_chunks AS c ON c.id = k.chunk_id"
                    " ORDER BY c.first_ts"
                )
            ).all()
            seen["views_up"] = inspect(connection).get_view_names()
            seen["sequence"] = connection.execute(
                text("SELECT id, last FROM reading_chunk_sequence")
            ).all()
        command.downgrade(config, "0002")
        seen["down"] = _stored(connection)
        seen["tables_down"] = set(inspect(connection).get_table_names())
        if connection.dialect.name == "postgresql":
            seen["kind_down"] = connection.execute(
                text("SELECT relkind::text FROM pg_class WHERE relname = 'readings'")
            ).scalar()
        return seen

    seen = await _migrating(database_url, migrate)
    expected = [
        (device_id, reading_id, ts, 60.0 + n)
        for n, (device_id, reading_id, ts) in enumerate(READINGS)
    ]
    assert seen["before"] == expected
    assert seen["up"] == expected
    assert seen["down"] == expected
    assert "reading_keys" not in seen["tables_down"]
    assert not {name for name in seen["tables_down"] if is_partition(name)}
    if not database_url.startswith("postgresql"):
        # One chunk a device, day and time received: here one a reading.
        assert [tuple(row) for row in seen["chunks"]] == [
            (device_id, reading_id, 1, _text(ts), _text(ts))
            for device_id, reading_id, ts in READINGS
        ]
        assert seen["views_up"] == ["readings"]
        assert [tuple(row) for row in seen["sequence"]] == [(1, 5)]
        assert "readings" in seen["tables_down"]
        assert not {"reading_chunks", "reading_chunk_keys"} & seen["tables_down"]
        return
    assert [tuple(row) for row in seen["partitions"]] == [
        ("readings_before_2000", "dev_a", "r-1999"),
        ("readings_2026_01", "dev_a", "r-jan"),
        ("readings_2026_02", "dev_a", "r-feb"),
        ("readings_2026_02", "dev_b", "r-feb"),
        ("readings_2026_03", "dev_b", "r-mar"),
    ]
    assert [tuple(row) for row in seen["keys"]] == [
        (device_id, reading_id, ts) for device_id, reading_id, ts in READINGS
    ]
    assert (seen["kind_up"], seen["kind_down"]) == ("p", "r")
