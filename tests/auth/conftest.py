from __future__ import annotations

import base64
import contextlib
import itertools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from medmesh.auth.bootstrap import CLI_CLIENT_ID, DEMO_SERVICE_CLIENT_ID, BootstrapResult, bootstrap
from medmesh.auth.config import AuthSettings
from medmesh.auth.main import create_app
from medmesh.auth.migrations import upgrade
from medmesh.platform.crypto import KeyRing
from medmesh.platform.db import Database, utcnow
from medmesh.platform.testing import DatabaseTemplates, Upgrade
from medmesh.platform.tokens import SigningKey

ISSUER = "http://auth.test"
ADMIN_PASSWORD = "correct horse battery staple"
CLIENT_IP = "203.0.113.7"


def light_settings(database_url: str, var_dir: Path, **overrides: Any) -> AuthSettings:
    """Test settings: light argon2 parameters, instant revocation sync."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "var_dir": var_dir,
        "issuer": ISSUER,
        "key_encryption_keys": KeyRing.generate().to_setting(),
        "argon2_memory_kib": 1024,
        "argon2_time_cost": 1,
        "revocation_sync_seconds": 0.0,
    }
    values.update(overrides)
    return AuthSettings(**values)


_KEY_POOL: list[SigningKey] = []


@pytest.fixture(autouse=True)
def _rsa_key_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    """RSA key generation dominates app start-up; tests draw distinct keys from a small pool."""
    if not _KEY_POOL:
        _KEY_POOL.extend(SigningKey.generate_rsa() for _ in range(6))
    keys = itertools.cycle(_KEY_POOL)
    monkeypatch.setattr(
        "medmesh.auth.keys.service.SigningKey.generate_rsa", lambda *a, **k: next(keys)
    )


@pytest.fixture
def database_upgrade() -> Upgrade:
    """Each test's database starts at auth's migrations' head (copied from a template)."""
    return upgrade


@pytest.fixture
def auth_settings(database_url: str, tmp_path: Path) -> AuthSettings:
    return light_settings(database_url, tmp_path)


def claims_of(token: str) -> dict[str, Any]:
    """The payload of a JWT, unverified (tests check what the server put in it)."""
    payload = token.split(".")[1]
    decoded: dict[str, Any] = orjson.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return decoded


def header_of(token: str) -> dict[str, Any]:
    head = token.split(".")[0]
    decoded: dict[str, Any] = orjson.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    return decoded


def basic_header(client_id: str, secret: str) -> dict[str, str]:
    raw = f"{client_id}:{secret}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": "Bearer " + token}


@dataclass
class AuthHarness:
    app: FastAPI
    http: httpx.AsyncClient
    boot: BootstrapResult
    settings: AuthSettings
    secrets: dict[str, str] = field(default_factory=dict)

    @property
    def database(self) -> Database:
        database: Database = self.app.state.database
        return database

    def basic(self, client_id: str) -> dict[str, str]:
        secret = self.secrets.get(client_id) or self.boot.clients[client_id]
        return basic_header(client_id, secret)

    async def token(self, client_id: str = DEMO_SERVICE_CLIENT_ID, **form: str) -> httpx.Response:
        data = {"grant_type": "client_credentials", **form}
        return await self.http.post("/oauth/token", data=data, headers=self.basic(client_id))

    async def access_token(self, client_id: str = DEMO_SERVICE_CLIENT_ID, **form: str) -> str:
        response = await self.token(client_id, **form)
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    async def login(
        self,
        username: str = "admin",
        password: str = ADMIN_PASSWORD,
        client_id: str = CLI_CLIENT_ID,
        **form: str,
    ) -> httpx.Response:
        data = {"grant_type": "password", "username": username, "password": password, **form}
        return await self.http.post("/oauth/token", data=data, headers=self.basic(client_id))

    async def admin_headers(self) -> dict[str, str]:
        response = await self.login()
        assert response.status_code == 200, response.text
        return bearer(response.json()["access_token"])

    async def refresh(
        self, refresh_token: str, client_id: str = CLI_CLIENT_ID, **form: str
    ) -> httpx.Response:
        data = {"grant_type": "refresh_token", "refresh_token": refresh_token, **form}
        return await self.http.post("/oauth/token", data=data, headers=self.basic(client_id))

    async def introspect(
        self, token: str, client_id: str = DEMO_SERVICE_CLIENT_ID
    ) -> dict[str, Any]:
        response = await self.http.post(
            "/oauth/introspect", data={"token": token}, headers=self.basic(client_id)
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def create_user(
        self, username: str, password: str = "a long enough password", **fields: Any
    ) -> dict[str, Any]:
        response = await self.http.post(
            "/admin/users",
            json={"username": username, "password": password, **fields},
            headers=await self.admin_headers(),
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    async def create_client(self, **fields: Any) -> dict[str, Any]:
        response = await self.http.post(
            "/admin/clients", json=fields, headers=await self.admin_headers()
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        self.secrets[body["client_id"]] = body["client_secret"]
        return body

    async def audit_events(self, **params: Any) -> list[dict[str, Any]]:
        response = await self.http.get(
            "/admin/audit-events",
            params={"limit": 1000, **params},
            headers=await self.admin_headers(),
        )
        assert response.status_code == 200, response.text
        data: list[dict[str, Any]] = response.json()["data"]
        return data

    async def count(self, table: str) -> int:
        async with self.database.engine.connect() as conn:
            return int((await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())

    async def counts(self) -> dict[str, int]:
        tables = ("users", "clients", "refresh_tokens", "roles", "revocations")
        return {t: await self.count(t) for t in tables}


@contextlib.asynccontextmanager
async def run_auth(
    settings: AuthSettings,
    *,
    client_ip: str = CLIENT_IP,
    raise_app_exceptions: bool = True,
    known_secrets: dict[str, str] | None = None,
    templates: DatabaseTemplates | None = None,
) -> AsyncIterator[AuthHarness]:
    """Migrate (from ``templates`` when given), bootstrap and start an auth-service app; an httpx
    client talks to it in-process."""
    if templates is not None:
        await templates.migrate(settings.effective_database_url, upgrade)
    else:
        await upgrade(settings.effective_database_url)
    app = create_app(settings)
    boot = await bootstrap(
        app.state.database, admin_password=ADMIN_PASSWORD, hasher=app.state.auth.users.hasher
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(
            app=app, client=(client_ip, 50000), raise_app_exceptions=raise_app_exceptions
        )
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
            yield AuthHarness(app, http, boot, settings, {**(known_secrets or {}), **boot.clients})


@pytest.fixture
async def auth(
    auth_settings: AuthSettings, database_templates: DatabaseTemplates
) -> AsyncIterator[AuthHarness]:
    async with run_auth(auth_settings, templates=database_templates) as harness:
        yield harness


AuthFactory = Callable[..., contextlib.AbstractAsyncContextManager[AuthHarness]]


@pytest.fixture
def auth_factory(
    database_url: str, tmp_path: Path, database_templates: DatabaseTemplates
) -> AuthFactory:
    """Start an app with other settings on this test's database: ``async with auth_factory(x=1)``."""
    kek = KeyRing.generate().to_setting()

    def start(
        *,
        client_ip: str = CLIENT_IP,
        raise_app_exceptions: bool = True,
        known_secrets: dict[str, str] | None = None,
        **overrides: Any,
    ) -> contextlib.AbstractAsyncContextManager[AuthHarness]:
        settings = light_settings(
            database_url, tmp_path, **{"key_encryption_keys": kek, **overrides}
        )
        return run_auth(
            settings,
            client_ip=client_ip,
            raise_app_exceptions=raise_app_exceptions,
            known_secrets=known_secrets,
            templates=database_templates,
        )

    return start


class FakeClock:
    """A controllable ``utcnow`` for modules that import it (login protection, refresh tokens)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return utcnow() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr("medmesh.auth.logins.service.utcnow", fake)
    return fake
