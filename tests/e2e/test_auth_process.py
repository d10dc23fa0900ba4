"""The real auth-service process, driven by Authlib's OAuth 2.0 client."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from authlib.deprecate import AuthlibDeprecationWarning

with warnings.catch_warnings():
    # Authlib 1.9 announces its move to httpx2 when the httpx integration is imported
    # (authlib.deprecate installs an "always" filter for it, hence imported first).
    warnings.simplefilter("ignore", AuthlibDeprecationWarning)
    from authlib.integrations.httpx_client import AsyncOAuth2Client

pytestmark = pytest.mark.e2e

MEDMESH = [sys.executable, "-m", "medmesh.cli"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningAuth:
    url: str
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    secrets: dict[str, str]
    admin_password: str


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MEDMESH, *args], env=env, capture_output=True, text=True, timeout=60)


@pytest.fixture
def running_auth(tmp_path: Path) -> Iterator[RunningAuth]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,  # noqa: TID251 - the service process inherits the test's environment
        "MEDMESH_AUTH_VAR_DIR": str(tmp_path),
        "MEDMESH_AUTH_ISSUER": url,
        "MEDMESH_AUTH_DRAIN_SECONDS": "0",
        "MEDMESH_AUTH_ARGON2_MEMORY_KIB": "1024",
        "MEDMESH_AUTH_ARGON2_TIME_COST": "1",
        "MEDMESH_AUTH_LOG_FILE": str(tmp_path / "auth.log"),
    }
    for name in ("MEDMESH_AUTH_DATABASE_URL", "MEDMESH_DATABASE_URL", "MEDMESH_JWT_HS256_SECRET"):
        env.pop(name, None)
    process = subprocess.Popen(
        [*MEDMESH, "serve", "auth", "--port", str(port), "--migrate"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (tmp_path / "auth.log").read_text()
            try:
                if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "auth-service did not become ready"
            time.sleep(0.1)
        boot = _cli(env, "admin", "bootstrap")
        assert boot.returncode == 0, boot.stderr
        secrets = dict(re.findall(r"client (\S+) secret: (\S+)", boot.stdout))
        password = re.search(r"admin user admin password: (\S+)", boot.stdout)
        assert password is not None
        assert secrets
        yield RunningAuth(url, env, process, secrets, password.group(1))
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


async def test_authlib_client_against_the_real_process(running_auth: RunningAuth) -> None:
    url, secrets = running_auth.url, running_auth.secrets
    token_url = url + "/oauth/token"

    async with AsyncOAuth2Client(
        client_id="demo-service",
        client_secret=secrets["demo-service"],
        token_endpoint_auth_method="client_secret_basic",
    ) as service:
        token = await service.fetch_token(token_url, grant_type="client_credentials")
        assert token["token_type"] == "Bearer"
        assert token["expires_in"] == 900

    async with AsyncOAuth2Client(
        client_id="medmesh-cli",
        client_secret=secrets["medmesh-cli"],
        token_endpoint_auth_method="client_secret_post",
        scope="openid auth:admin",
    ) as cli:
        first = await cli.fetch_token(
            token_url, username="admin", password=running_auth.admin_password
        )
        assert first["refresh_token"].startswith("mmrt_")
        me = await cli.get(url + "/oauth/userinfo")
        assert me.status_code == 200
        assert me.json()["preferred_username"] == "admin"
        refreshed = await cli.refresh_token(token_url, refresh_token=first["refresh_token"])
        assert refreshed["refresh_token"] != first["refresh_token"]
        assert refreshed["access_token"] != first["access_token"]
        users = await cli.get(url + "/admin/users")
        assert users.status_code == 200
        # The rotated refresh token is spent: presenting it again revokes the session.
        async with httpx.AsyncClient() as raw:
            reuse = await raw.post(
                token_url,
                data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
                auth=("medmesh-cli", secrets["medmesh-cli"]),
            )
            assert reuse.status_code == 400
            assert reuse.json()["error"] == "invalid_grant"

    async with httpx.AsyncClient() as raw:
        metrics = (await raw.get(url + "/metrics")).text
    assert 'route="/oauth/token"' in metrics

    running_auth.process.send_signal(signal.SIGTERM)
    assert running_auth.process.wait(30) == 0

    verify = _cli(running_auth.env, "audit", "verify", "auth")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "audit trail intact" in verify.stdout
    log = (Path(running_auth.env["MEDMESH_AUTH_VAR_DIR"]) / "auth.log").read_text()
    assert running_auth.admin_password not in log
    assert secrets["medmesh-cli"] not in log
