"""Alembic migrations of the payment-gateway database."""

from __future__ import annotations

from medmesh.platform.db import upgrade_database

SCRIPT_LOCATION = "medmesh.payments:migrations"


async def upgrade(url: str, revision: str = "head") -> None:
    """Bring the payments database at ``url`` up to ``revision``."""
    await upgrade_database(SCRIPT_LOCATION, url, revision)
