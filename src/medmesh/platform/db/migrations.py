"""Alembic migrations per service: configuration, the online runner, upgrade."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from sqlalchemy import MetaData
from sqlalchemy.engine import Connection

from medmesh.platform.db.engine import create_unpooled_engine, dispose_engine

if TYPE_CHECKING:
    from alembic.runtime.environment import IncludeNameFn


def alembic_config(script_location: str, url: str) -> Any:
    """An Alembic Config for a service's migrations folder and database URL."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", script_location)
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["medmesh_url"] = url
    return config


def run_migrations_online(
    target_metadata: MetaData | list[MetaData], include_name: IncludeNameFn | None = None
) -> None:
    """The body of a service's ``migrations/env.py``: upgrade with an async engine.
    ``include_name`` leaves out of autogenerate what a service's migrations make by hand."""
    from alembic import context

    config = context.config
    url: str = (
        config.attributes.get("medmesh_url") or config.get_main_option("sqlalchemy.url") or ""
    )

    def do_run(connection: Connection) -> None:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
            include_name=include_name,
        )
        with context.begin_transaction():
            context.run_migrations()

    connection: Connection | None = config.attributes.get("connection")
    if connection is not None:
        do_run(connection)
        return

    async def run_async() -> None:
        engine = create_unpooled_engine(url)
        async with engine.begin() as conn:
            await conn.run_sync(do_run)
        await dispose_engine(engine)

    asyncio.run(run_async())


async def upgrade_database(script_location: str, url: str, revision: str = "head") -> None:
    """Apply a service's migrations up to ``revision`` (from async code)."""
    from alembic import command

    engine = create_unpooled_engine(url)
    try:
        async with engine.begin() as conn:

            def run(connection: Connection) -> None:
                config = alembic_config(script_location, url)
                config.attributes["connection"] = connection
                command.upgrade(config, revision)

            await conn.run_sync(run)
    finally:
        await dispose_engine(engine)
