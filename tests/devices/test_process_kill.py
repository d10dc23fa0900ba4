"""A devices process killed with SIGKILL while readings stream, then started again: no reading
it acknowledged is lost — over HTTP (every 200 answered is stored) and over MQTT (every message
the broker accepted is stored once the subscriber is back)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiomqtt
import httpx
import orjson
import pytest
from sqlalchemy import text

from medmesh.devices.migrations import upgrade
from medmesh.platform.db import Database
from medmesh.platform.testing import TokenFactory
from medmesh.platform.tokens import SigningKey

pytestmark = pytest.mark.e2e

SECRET = "devices-kill-test-hs256-secret-of-32-bytes!"
ISSUER = "http://auth.kill.test"


@pytest.fixture
def database_upgrade() -> None:
    """The test migrates its database itself (the process under test reads it)."""
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _token(scope: str) -> str:
    tokens = TokenFactory(ISSUER)
    tokens.key = SigningKey.hs256(SECRET)
    value: str = tokens.token(scope, audience="medmesh-devices", lifetime=3600)
    return value


class Service:
    def __init__(self, env: dict[str, str], port: int) -> None:
        self.env = env
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "medmesh.devices.main:app", "--port", str(self.port)],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while True:
            assert self.process.poll() is None, "the service exited"
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return
            assert time.monotonic() < deadline, "the service did not become ready"
            time.sleep(0.1)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def service_env(database_url: str, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDMESH_")}  # noqa: TID251
    env.update(
        {
            "MEDMESH_DEVICES_DATABASE_URL": database_url,
            "MEDMESH_DEVICES_VAR_DIR": str(tmp_path),
            "MEDMESH_DEVICES_ISSUER": ISSUER,
            "MEDMESH_DEVICES_JWT_HS256_SECRET": SECRET,
            "MEDMESH_DEVICES_REVOCATION_POLL_SECONDS": "0",
            "MEDMESH_DEVICES_PHI_URL": "http://127.0.0.1:9",
            "MEDMESH_DEVICES_DELIVERY_BACKOFF_SECONDS": "3600",
            "MEDMESH_DEVICES_LOG_FILE": str(tmp_path / "devices.log"),
        }
    )
    return env


@contextlib.asynccontextmanager
async def running(env: dict[str, str]) -> AsyncIterator[Service]:
    service = Service(env, _free_port())
    await asyncio.to_thread(service.start)
    try:
        yield service
    finally:
        await asyncio.to_thread(service.stop)


async def stored_ids(database_url: str) -> set[str]:
    database = Database(database_url)
    try:
        async with database.engine.connect() as conn:
            return {row[0] for row in await conn.execute(text("SELECT reading_id FROM readings"))}
    finally:
        await database.dispose()


async def register(url: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        headers = {"Authorization": "Bearer " + _token("devices:write")}
        device: dict[str, Any] = (await http.post("/v1/devices", json={}, headers=headers)).json()
        return device


def reading(reading_id: str) -> dict[str, Any]:
    return {
        "reading_id": reading_id,
        "timestamp": "2026-03-01T08:00:00Z",
        "metric": "heart_rate",
        "value": 70,
        "unit": "/min",
    }


async def test_http_readings_answered_survive_sigkill(
    database_url: str, service_env: dict[str, str]
) -> None:
    await upgrade(database_url)
    acknowledged: set[str] = set()
    async with running(service_env) as service:
        device = await register(service.url)
        headers = {"X-Device-Key": device["credential"]["key"]}
        path = f"/v1/devices/{device['id']}/readings"

        async def stream(worker: int) -> None:
            async with httpx.AsyncClient(base_url=service.url, timeout=30) as http:
                for n in itertools.count():
                    ids = [f"w{worker}-{n}-{i}" for i in range(50)]
                    try:
                        response = await http.post(
                            path, json={"readings": [reading(i) for i in ids]}, headers=headers
                        )
                    except httpx.HTTPError:
                        return  # the process is gone: this batch was not acknowledged
                    if response.status_code == 200:
                        acknowledged.update(ids)

        streams = [asyncio.create_task(stream(w)) for w in range(3)]
        deadline = time.monotonic() + 60
        while len(acknowledged) < 600:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        await asyncio.to_thread(service.kill)
        await asyncio.gather(*streams)
    async with running(service_env):
        stored = await stored_ids(database_url)
    assert acknowledged
    assert acknowledged <= stored


async def test_mqtt_messages_accepted_by_the_broker_survive_sigkill(
    mqtt_url: str, database_url: str, service_env: dict[str, str]
) -> None:
    await upgrade(database_url)
    run = uuid.uuid4().hex[:12]
    env = {
        **service_env,
        "MEDMESH_DEVICES_MQTT_URL": mqtt_url,
        "MEDMESH_DEVICES_MQTT_TOPIC": f"kill-{run}/devices/+/readings",
        "MEDMESH_DEVICES_MQTT_GROUP": f"group-{run}",
        "MEDMESH_DEVICES_MQTT_CLIENT_ID": f"devices-{run}",
        "MEDMESH_DEVICES_MQTT_RECONNECT_SECONDS": "0.1",
    }
    broker = urlsplit(mqtt_url)
    published: list[str] = []
    async with running(env) as service:
        device = await register(service.url)
        topic = f"kill-{run}/devices/{device['id']}/readings"
        async with aiomqtt.Client(
            broker.hostname or "127.0.0.1", broker.port or 1883, protocol=aiomqtt.ProtocolVersion.V5
        ) as client:
            for n in range(400):
                await client.publish(topic, orjson.dumps(reading(f"m{n}")), qos=1)
                published.append(f"m{n}")
                if n == 200:
                    await asyncio.to_thread(service.kill)
    async with running(env):
        deadline = time.monotonic() + 60
        while True:
            stored = await stored_ids(database_url)
            if set(published) <= stored:
                break
            assert time.monotonic() < deadline, f"{len(set(published) - stored)} not stored"
            await asyncio.sleep(0.1)
    assert len(stored) == 400
