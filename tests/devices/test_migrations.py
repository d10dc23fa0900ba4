"""The devices schema: migrated up it matches the models (and the platform's audit and outbox
tables) exactly; migrated down it is gone."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect

from medmesh.devices.migrations import SCRIPT_LOCATION
from medmesh.devices.models import DevicesBase
from medmesh.platform import audit, outbox  # noqa: F401 - registers the platform tables
from medmesh.platform.db import Base, alembic_config, create_unpooled_engine, dispose_engine


@pytest.fixture
def database_upgrade() -> None:
    """These tests migrate from an empty database."""
    return None


@pytest.mark.postgres
async def test_the_migrations_build_the_models_and_come_down(database_url: str) -> None:
    engine = create_unpooled_engine(database_url)

    def migrate(connection: Connection) -> tuple[list[object], set[str], set[str]]:
        config = alembic_config(SCRIPT_LOCATION, database_url)
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        differences = compare_metadata(
            MigrationContext.configure(connection, opts={"compare_type": True}),
            [DevicesBase.metadata, Base.metadata],  # type: ignore[arg-type]
        )
        up = set(inspect(connection).get_table_names())
        command.downgrade(config, "base")
        down = set(inspect(connection).get_table_names())
        return differences, up, down

    try:
        async with engine.begin() as conn:
            differences, up, down = await conn.run_sync(migrate)
    finally:
        await dispose_engine(engine)
    assert differences == []
    assert set(DevicesBase.metadata.tables) <= up
    assert not set(DevicesBase.metadata.tables) & down
