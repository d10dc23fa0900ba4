"""Migration 0002: the revoked access tokens move to the revocations table, and back."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import Connection, text

from medmesh.auth.migrations import SCRIPT_LOCATION
from medmesh.platform.db import alembic_config, create_unpooled_engine, dispose_engine


@pytest.fixture
def database_upgrade() -> None:
    """These tests migrate step by step from an empty database."""
    return None


KEEP = datetime(2030, 1, 1, tzinfo=UTC)
REVOKED = datetime(2026, 1, 1, tzinfo=UTC)


async def test_0002_moves_revoked_access_tokens_and_back(database_url: str) -> None:
    engine = create_unpooled_engine(database_url)

    def migrate(connection: Connection) -> tuple[list[tuple[str, str]], list[str]]:
        config = alembic_config(SCRIPT_LOCATION, database_url)
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
        connection.execute(
            text("INSERT INTO revoked_access_tokens VALUES ('jti-1', :keep, :revoked)"),
            {"keep": KEEP, "revoked": REVOKED},
        )
        command.upgrade(config, "0002")
        moved = [
            (row.kind, row.value)
            for row in connection.execute(text("SELECT kind, value FROM revocations"))
        ]
        command.downgrade(config, "0001")
        back = [
            row.jti for row in connection.execute(text("SELECT jti FROM revoked_access_tokens"))
        ]
        return moved, back

    try:
        async with engine.begin() as conn:
            moved, back = await conn.run_sync(migrate)
    finally:
        await dispose_engine(engine)
    assert moved == [("jti", "jti-1")]
    assert back == ["jti-1"]
