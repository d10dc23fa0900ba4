"""``POST /v1/payment_intents`` is a direct route (no routing, no dependency solving): it
answers exactly as the routed endpoint does — success, replay, bad input, no token, a token
without the scope — and is documented the same way."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from medmesh.payments.payment_intents import endpoints
from medmesh.platform.testing import DatabaseTemplates, TokenFactory
from medmesh.platform.web import direct_routes
from tests.payments.conftest import PaymentsHarness, payments_settings_for, run_payments

PAY = {"amount": "2500", "currency": "usd", "payment_method": "pm_card_visa", "confirm": "true"}


@pytest.fixture
async def routed(
    database_url: str,
    tmp_path: Path,
    token_factory: TokenFactory,
    database_templates: DatabaseTemplates,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[PaymentsHarness]:
    """The gateway with the create endpoint served through the router (its mark removed), on
    the test's database."""
    monkeypatch.delattr(endpoints.create_payment_intent, "__medmesh_direct__")
    settings = payments_settings_for(database_url, tmp_path / "routed")
    async with run_payments(settings, token_factory, database_templates) as harness:
        yield harness


#: What differs between two equal requests: ids, secrets, times.
_DRAWN = {"id", "client_secret", "created", "latest_charge", "payment_method", "fingerprint"}


def _without_drawn(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_drawn(v) for k, v in value.items() if k not in _DRAWN}
    if isinstance(value, list):
        return [_without_drawn(v) for v in value]
    return value


def _comparable(response: httpx.Response) -> tuple[int, Any, str | None]:
    body = _without_drawn(response.json())
    return response.status_code, body, response.headers.get("idempotent-replayed")


async def _answers(payments: PaymentsHarness, key: str) -> list[tuple[int, Any, str | None]]:
    post = payments.http.post
    path = "/v1/payment_intents"
    writer = payments.headers()
    return [
        _comparable(await post(path, data=PAY, headers=writer)),
        _comparable(await post(path, data=PAY, headers={**writer, "Idempotency-Key": key})),
        _comparable(await post(path, data=PAY, headers={**writer, "Idempotency-Key": key})),
        _comparable(await post(path, data={**PAY, "amount": "0"}, headers=writer)),
        _comparable(await post(path, data={**PAY, "color": "red"}, headers=writer)),
        _comparable(await post(path, data=PAY)),
        _comparable(await post(path, data=PAY, headers=payments.headers("payments:read"))),
        _comparable(
            await post(
                path,
                data={**PAY, "payment_method": "pm_card_chargeDeclinedInsufficientFunds"},
                headers=writer,
            )
        ),
    ]


async def test_create_is_the_gateways_direct_route(payments: PaymentsHarness) -> None:
    assert direct_routes(payments.app).keys() == {("POST", "/v1/payment_intents")}


@pytest.mark.postgres
async def test_the_direct_create_answers_as_the_routed_one(
    payments: PaymentsHarness, routed: PaymentsHarness
) -> None:
    assert not direct_routes(routed.app)
    # The two apps share the test's database: each uses its own Idempotency-Key.
    direct, through_router = await _answers(payments, "k-1"), await _answers(routed, "k-2")
    assert direct == through_router
    assert [status for status, _, _ in direct] == [200, 200, 200, 400, 400, 401, 403, 402]
    assert direct[2][2] == "true"
    assert await payments.count("payment_intents") == 6
    assert payments.app.openapi()["paths"] == routed.app.openapi()["paths"]
