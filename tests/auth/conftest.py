from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from medmesh.auth.bootstrap import CLI_CLIENT_ID, DEMO_SERVICE_CLIENT_ID, BootstrapResult, bootstrap
from medmesh.auth.config import AuthSettings
from medmesh.auth.main import create_app
from medmesh.auth.migrations import upgrade
from medmesh.platform.crypto import KeyRing

ISSUER = "http://auth.test"
ADMIN_PASSWORD = "correct horse battery staple"


@pytest.fixture
def auth_settings(database_url: str, tmp_path: Path) -> AuthSettings:
    return AuthSettings(
        database_url=database_url,
        var_dir=tmp_path,
        issuer=ISSUER,
        key_encryption_keys=KeyRing.generate().to_setting(),
        argon2_memory_kib=1024,
        argon2_time_cost=1,
        revocation_sync_seconds=0.0,
    )


@dataclass
class AuthHarness:
    app: FastAPI
    http: httpx.AsyncClient
    boot: BootstrapResult
    settings: AuthSettings

    def basic(self, client_id: str) -> dict[str, str]:
        raw = f"{client_id}:{self.boot.clients[client_id]}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode()}

    async def token(self, client_id: str = DEMO_SERVICE_CLIENT_ID, **form: str) -> httpx.Response:
        data = {"grant_type": "client_credentials", **form}
        return await self.http.post("/oauth/token", data=data, headers=self.basic(client_id))

    async def login(
        self, username: str = "admin", password: str = ADMIN_PASSWORD, **form: str
    ) -> httpx.Response:
        data = {"grant_type": "password", "username": username, "password": password, **form}
        return await self.http.post("/oauth/token", data=data, headers=self.basic(CLI_CLIENT_ID))

    async def admin_headers(self) -> dict[str, str]:
        response = await self.login()
        assert response.status_code == 200, response.text
        return {"Authorization": "Bearer " + response.json()["access_token"]}


@pytest.fixture
async def auth(auth_settings: AuthSettings) -> AsyncIterator[AuthHarness]:
    await upgrade(auth_settings.effective_database_url)
    app = create_app(auth_settings)
    boot = await bootstrap(
        app.state.database, admin_password=ADMIN_PASSWORD, hasher=app.state.auth.users.hasher
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
            yield AuthHarness(app, http, boot, auth_settings)
