"""Alembic migrations of the medical-device service database."""

from __future__ import annotations

from medmesh.platform.db import upgrade_database

SCRIPT_LOCATION = "medmesh.devices:migrations"


async def upgrade(url: str, revision: str = "head") -> None:
    """Bring the devices database at ``url`` up to ``revision``."""
    await upgrade_database(SCRIPT_LOCATION, url, revision)
