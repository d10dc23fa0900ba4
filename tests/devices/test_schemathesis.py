"""Property-based requests generated from the medical-device service's OpenAPI document never
get a 5xx.

schemathesis reads ``/openapi.json`` of a running service process (uvicorn, HS256 tokens,
SQLite in a temporary folder) and sends generated requests to every operation with a token that
may do everything (``devices:admin devices:ingest``), so that the requests reach the handlers.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.core.result import Ok

from medmesh.devices.migrations import upgrade
from medmesh.platform.testing import TokenFactory
from medmesh.platform.tokens import SigningKey

pytestmark = pytest.mark.e2e

SECRET = "devices-schemathesis-hs256-secret-of-32-bytes"
ISSUER = "http://auth.schemathesis.test"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def devices_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    var_dir: Path = tmp_path_factory.mktemp("devices-schemathesis")
    database = f"sqlite+medmesh:///{var_dir / 'devices.db'}"
    asyncio.run(upgrade(database))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDMESH_")}  # noqa: TID251
    env.update(
        {
            "MEDMESH_DEVICES_DATABASE_URL": database,
            "MEDMESH_DEVICES_VAR_DIR": str(var_dir),
            "MEDMESH_DEVICES_ISSUER": ISSUER,
            "MEDMESH_DEVICES_JWT_HS256_SECRET": SECRET,
            "MEDMESH_DEVICES_REVOCATION_POLL_SECONDS": "0",
            "MEDMESH_DEVICES_PHI_URL": "http://127.0.0.1:9",
            "MEDMESH_DEVICES_LOG_FILE": str(var_dir / "devices.log"),
        }
    )
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "medmesh.devices.main:app", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, "the service exited"
            try:
                if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the service did not become ready"
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def token() -> str:
    tokens = TokenFactory(ISSUER)
    tokens.key = SigningKey.hs256(SECRET)
    value: str = tokens.token(
        "devices:admin devices:ingest", audience="medmesh-devices", lifetime=3600
    )
    return value


def test_no_generated_request_gets_a_server_error(devices_url: str, token: str) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    # A registered device, so that generated ids sometimes meet a real one.
    device = httpx.post(devices_url + "/v1/devices", json={}, headers=headers).json()
    schema = schemathesis.openapi.from_url(devices_url + "/openapi.json")
    failures: list[str] = []
    statuses: list[int] = []
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result.err()
        operations.append(result.ok())
    assert len(operations) >= 17

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            if case.path_parameters and "device_id" in case.path_parameters:
                case.path_parameters["device_id"] = device["id"]
            response = case.call(base_url=devices_url, headers=headers)
            statuses.append(response.status_code)
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path} -> {response.status_code}: "
                    f"{response.text[:300]}"
                )

        run()
    assert failures == []
    assert len(statuses) >= 5 * len(operations)
    assert any(200 <= status < 300 for status in statuses)
