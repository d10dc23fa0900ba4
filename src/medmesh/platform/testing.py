"""The pytest plugin every medmesh test suite uses.

Enable it with ``pytest_plugins = ["medmesh.platform.testing"]`` in ``conftest.py``.

- ``database_url``: a fresh, empty database per test, on SQLite always and on
  real PostgreSQL too when ``MEDMESH_TEST_POSTGRES_URL`` is set (the fixture is
  parametrized, so every database test runs on both). When the variable is set
  and the server cannot be reached the test fails; it is never skipped.
- ``mqtt_url``: the broker of ``MEDMESH_TEST_MQTT_URL`` (tests that need it fail
  when it is set and unreachable, and are skipped only when it is not set).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url


class TestEnvironment(BaseSettings):
    """Where the real test servers are (``MEDMESH_TEST_*``)."""

    __test__ = False
    model_config = SettingsConfigDict(env_prefix="MEDMESH_TEST_", extra="ignore")

    postgres_url: str = ""
    mqtt_url: str = ""


def test_environment() -> TestEnvironment:
    return TestEnvironment()


test_environment.__test__ = False  # type: ignore[attr-defined]


def database_backends() -> list[str]:
    """``sqlite`` always; ``postgres`` when MEDMESH_TEST_POSTGRES_URL is set."""
    return ["sqlite", "postgres"] if test_environment().postgres_url else ["sqlite"]


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def create_postgres_database(base_url: str) -> str:
    """Create an empty database on the server of ``base_url``; return its async URL."""
    import asyncpg

    name = f"medmesh_test_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(_asyncpg_dsn(base_url), timeout=10)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return (
        make_url(base_url)
        .set(drivername="postgresql+asyncpg", database=name)
        .render_as_string(hide_password=False)
    )


async def drop_postgres_database(base_url: str, url: str) -> None:
    import asyncpg

    name = make_url(url).database
    conn = await asyncpg.connect(_asyncpg_dsn(base_url), timeout=10)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(params=database_backends())
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh database URL (SQLite file, or a new PostgreSQL database)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
        return
    base = test_environment().postgres_url
    url = await create_postgres_database(base)
    try:
        yield url
    finally:
        await drop_postgres_database(base, url)


@pytest.fixture
def mqtt_url() -> str:
    """The real MQTT broker's URL; skips only when MEDMESH_TEST_MQTT_URL is not set."""
    url = test_environment().mqtt_url
    if not url:
        pytest.skip("MEDMESH_TEST_MQTT_URL is not set")
    return url
