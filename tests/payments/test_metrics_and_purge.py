from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text

from medmesh.payments.components import PaymentsState
from medmesh.platform.db import utcnow
from tests.payments.conftest import PaymentsHarness

PAY = {"amount": "900", "currency": "usd", "payment_method": "pm_card_visa", "confirm": "true"}


async def test_writes_and_card_errors_are_counted(payments: PaymentsHarness) -> None:
    await payments.ok("/v1/payment_intents", PAY, **{"Idempotency-Key": "m-1"})
    await payments.ok("/v1/payment_intents", PAY, **{"Idempotency-Key": "m-1"})
    declined = {**PAY, "payment_method": "pm_card_chargeDeclinedExpiredCard"}
    assert (await payments.post("/v1/payment_intents", declined)).status_code == 402
    assert (await payments.post("/v1/payment_intents", {"amount": "0"})).status_code == 400
    metrics = (await payments.http.get("/metrics")).text
    create = 'action="payments.payment_intent.create"'
    assert f'medmesh_payments_writes_total{{{create},outcome="succeeded"}} 1.0' in metrics
    assert f'medmesh_payments_writes_total{{{create},outcome="replayed"}} 1.0' in metrics
    assert f'medmesh_payments_writes_total{{{create},outcome="card_error"}} 1.0' in metrics
    assert 'medmesh_payments_card_errors_total{code="expired_card"} 1.0' in metrics


async def test_keys_past_their_window_are_purged(payments: PaymentsHarness) -> None:
    await payments.ok("/v1/customers", {"name": "A"}, **{"Idempotency-Key": "old"})
    await payments.ok("/v1/customers", {"name": "B"}, **{"Idempotency-Key": "new"})
    async with payments.database.engine.begin() as conn:
        await conn.execute(
            text("UPDATE idempotency_keys SET created = :at WHERE key = 'old'"),
            {"at": utcnow() - timedelta(hours=25)},
        )
    assert await PaymentsState.of(payments.app).payments.writes.purge_expired() == 1
    assert await payments.count("idempotency_keys", "key = 'new'") == 1
    assert await payments.count("idempotency_keys") == 1
    reused = await payments.ok("/v1/customers", {"name": "C"}, **{"Idempotency-Key": "old"})
    assert reused["name"] == "C"
    metrics = (await payments.http.get("/metrics")).text
    assert "medmesh_payments_idempotency_keys_expired_total 1.0" in metrics


async def test_a_key_past_its_window_runs_again_before_the_purge(
    payments: PaymentsHarness,
) -> None:
    first = await payments.ok("/v1/customers", {"name": "A"}, **{"Idempotency-Key": "aged"})
    async with payments.database.engine.begin() as conn:
        await conn.execute(
            text("UPDATE idempotency_keys SET created = :at WHERE key = 'aged'"),
            {"at": utcnow() - timedelta(hours=25)},
        )
    again = await payments.post("/v1/customers", {"name": "B"}, **{"Idempotency-Key": "aged"})
    assert again.status_code == 200
    assert again.headers.get("idempotent-replayed") is None
    assert again.json()["name"] == "B"
    assert again.json()["id"] != first["id"]
    assert await payments.count("idempotency_keys", "key = 'aged'") == 1
    assert await payments.count("customers") == 2
