from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from medmesh.payments.config import PaymentsSettings
from medmesh.payments.main import create_app
from medmesh.payments.migrations import upgrade
from medmesh.platform.db import Database
from medmesh.platform.testing import DatabaseTemplates, TokenFactory, Upgrade
from medmesh.platform.tokens import TokenVerifier

ISSUER = "http://auth.test"
AUDIENCE = "medmesh-payments"
CLIENT_IP = "198.51.100.40"
WRITE = "payments:write"
ADMIN = "payments:admin"
#: Every Stripe test card number the tests use (none may be left in files afterwards).
TEST_NUMBERS = (
    "4242424242424242",
    "4000000000000002",
    "4000000000009995",
    "4000000000009987",
    "4000000000009979",
    "4000000000000069",
    "4000000000000127",
    "4000000000000119",
    "4000002760003184",
    "5555555555554444",
    "4242424242424241",
)


def payments_settings_for(database_url: str, var_dir: Path, **overrides: Any) -> PaymentsSettings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "var_dir": var_dir,
        "issuer": ISSUER,
        "public_url": "http://payments.test",
    }
    values.update(overrides)
    return PaymentsSettings(**values)


@pytest.fixture
def database_upgrade() -> Upgrade:
    """Each test's database starts at payments' migrations' head (copied from a template)."""
    return upgrade


@pytest.fixture
def payments_settings(database_url: str, tmp_path: Path) -> PaymentsSettings:
    return payments_settings_for(database_url, tmp_path)


@dataclass
class PaymentsHarness:
    app: FastAPI
    http: httpx.AsyncClient
    tokens: TokenFactory
    settings: PaymentsSettings

    def headers(self, scope: str = WRITE, **claims: Any) -> dict[str, str]:
        return self.tokens.headers(scope, audience=AUDIENCE, **claims)

    async def post(
        self, path: str, data: dict[str, Any] | None = None, **headers: str
    ) -> httpx.Response:
        """A form POST as Stripe's libraries send it (``data`` keys in bracket notation)."""
        return await self.http.post(path, data=data or {}, headers={**self.headers(), **headers})

    async def ok(self, path: str, data: dict[str, Any] | None = None, **headers: str) -> Any:
        response = await self.post(path, data, **headers)
        assert response.status_code == 200, response.text
        return response.json()

    async def get(self, path: str, **params: Any) -> Any:
        response = await self.http.get(path, params=params, headers=self.headers())
        assert response.status_code == 200, response.text
        return response.json()

    @property
    def database(self) -> Database:
        database: Database = self.app.state.database
        return database

    async def count(self, table: str, where: str = "1=1", **bind: Any) -> int:
        async with self.database.engine.connect() as conn:
            value = await conn.scalar(text(f"SELECT count(*) FROM {table} WHERE {where}"), bind)
        return int(value or 0)

    async def paid_intent(self, amount: int = 2000, **extra: Any) -> dict[str, Any]:
        data = {
            "amount": amount,
            "currency": "usd",
            "payment_method": "pm_card_visa",
            "confirm": "true",
            **extra,
        }
        intent: dict[str, Any] = await self.ok("/v1/payment_intents", data)
        return intent


@contextlib.asynccontextmanager
async def run_payments(
    settings: PaymentsSettings, tokens: TokenFactory, templates: DatabaseTemplates | None = None
) -> AsyncIterator[PaymentsHarness]:
    if templates is None:
        await upgrade(settings.effective_database_url)
    else:
        await templates.migrate(settings.effective_database_url, upgrade)
    app = create_app(settings)
    app.state.verifier = TokenVerifier(ISSUER, AUDIENCE, jwks=tokens.jwks())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=(CLIENT_IP, 40000))
        async with httpx.AsyncClient(
            transport=transport, base_url="http://payments.test", timeout=60
        ) as http:
            yield PaymentsHarness(app, http, tokens, settings)


@pytest.fixture
async def payments(
    payments_settings: PaymentsSettings,
    token_factory: TokenFactory,
    database_templates: DatabaseTemplates,
) -> AsyncIterator[PaymentsHarness]:
    async with run_payments(payments_settings, token_factory, database_templates) as harness:
        yield harness
