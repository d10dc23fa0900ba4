"""Alembic migrations of the phi-service database."""

from __future__ import annotations

from medmesh.platform.db import upgrade_database

SCRIPT_LOCATION = "medmesh.phi:migrations"


async def upgrade(url: str, revision: str = "head") -> None:
    """Bring the phi database at ``url`` up to ``revision``."""
    await upgrade_database(SCRIPT_LOCATION, url, revision)
