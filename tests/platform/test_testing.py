from pathlib import Path
from typing import ClassVar

import pytest
from pydantic_settings import SettingsConfigDict

from medmesh.platform.app import create_service_app
from medmesh.platform.config import ServiceSettings
from medmesh.platform.db import Database
from medmesh.platform.logging import get_logger
from medmesh.platform.testing import LogLines, app_client, database_backends, test_environment


class DemoSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="MEDMESH_DEMO_", extra="ignore")
    service_name: ClassVar[str] = "demo"


def test_backends_follow_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEDMESH_TEST_POSTGRES_URL", raising=False)
    assert database_backends() == ["sqlite"]

    monkeypatch.setenv("MEDMESH_TEST_POSTGRES_URL", "postgresql+asyncpg://pg/test")
    assert database_backends() == ["sqlite", "postgres"]


def test_environment_reads_the_test_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDMESH_TEST_REDIS_URL", "redis://cache:6379/3")
    monkeypatch.setenv("MEDMESH_TEST_MQTT_URL", "mqtt://broker:1883")

    env = test_environment()

    assert env.redis_url == "redis://cache:6379/3"
    assert env.mqtt_url == "mqtt://broker:1883"


async def test_database_url_is_a_fresh_reachable_database(database_url: str) -> None:
    database = Database(database_url)
    try:
        await database.ping()
    finally:
        await database.dispose()


async def test_app_client_runs_the_lifespan(tmp_path: Path, log_lines: LogLines) -> None:
    app = create_service_app(
        DemoSettings(database_url=f"sqlite+medmesh:///{tmp_path / 'demo.db'}"),
        title="demo",
        version="0",
        description="demo",
        routers=[],
        verify_tokens=False,
    )
    async with app_client(app) as client:
        response = await client.get("/readyz")
        started = log_lines.events("service_started")

    assert response.status_code == 200
    assert len(started) == 1
    assert len(log_lines.events("service_stopping")) == 1


def test_log_lines_parse_what_is_logged(log_lines: LogLines) -> None:
    get_logger("test").info("captured", answer=42)

    assert log_lines.events("captured")[0]["answer"] == 42


async def test_redis_url_answers(redis_url: str) -> None:
    import redis.asyncio as redis_asyncio

    client = redis_asyncio.from_url(redis_url)
    try:
        assert await client.ping()
    finally:
        await client.aclose()
