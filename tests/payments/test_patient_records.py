"""A succeeded payment or refund of a customer tied to a FHIR Patient is queued for phi in its
own transaction: one PaymentReconciliation a payment or refund, valid R4. Delivery to a real
phi-service is in test_patient_records_process.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import ValidationError
from sqlalchemy import text

from medmesh.payments.patient_records.resources import money, payment_record, refund_record
from medmesh.phi.fhir.r4 import validate
from medmesh.platform.testing import DatabaseTemplates, TokenFactory
from tests.payments.conftest import PaymentsHarness, payments_settings_for, run_payments

WHEN = datetime(2026, 12, 4, 9, 30, 15, tzinfo=UTC)


@pytest.fixture
async def recording(
    database_url: str,
    tmp_path: Path,
    token_factory: TokenFactory,
    database_templates: DatabaseTemplates,
) -> AsyncIterator[PaymentsHarness]:
    settings = payments_settings_for(
        database_url,
        tmp_path,
        phi_url="http://127.0.0.1:9",
        phi_client_secret="not-used-while-the-worker-sleeps",
        webhook_poll_seconds=3600,
    )
    async with run_payments(settings, token_factory, database_templates) as harness:
        yield harness


async def _queued(payments: PaymentsHarness) -> list[dict[str, Any]]:
    query = text(
        "SELECT destination, dedup_key, payload FROM outbox_messages "
        "WHERE topic = 'payments.phi' ORDER BY created_at, dedup_key"
    )
    async with payments.database.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [
        {
            "destination": d,
            "dedup_key": k,
            "payload": orjson.loads(p) if isinstance(p, str) else p,
        }
        for d, k, p in rows
    ]


@pytest.mark.postgres
async def test_a_patients_payments_and_refunds_are_queued_once(
    recording: PaymentsHarness,
) -> None:
    patient = await recording.ok("/v1/customers", {"metadata[patient]": "Patient/p-1"})
    desk = await recording.ok("/v1/customers", {"email": "desk@example.org"})
    paid = await recording.paid_intent(amount=1999, customer=patient["id"])
    await recording.paid_intent(amount=500, customer=desk["id"])
    await recording.paid_intent(amount=700)
    manual = await recording.paid_intent(
        amount=1000, currency="jpy", customer=patient["id"], capture_method="manual"
    )
    assert manual["status"] == "requires_capture"
    queued = await _queued(recording)
    assert [(q["destination"], q["dedup_key"]) for q in queued] == [
        (f"PaymentReconciliation/{paid['id'].replace('_', '-')}", f"phi:{paid['id']}")
    ]
    await recording.ok(f"/v1/payment_intents/{manual['id']}/capture", {"amount_to_capture": 800})
    refund = await recording.ok("/v1/refunds", {"payment_intent": paid["id"], "amount": 99})
    queued = await _queued(recording)
    assert [q["dedup_key"] for q in queued] == [
        f"phi:{paid['id']}",
        f"phi:{manual['id']}",
        f"phi:{refund['id']}",
    ]
    payment, captured, refunded = (q["payload"] for q in queued)
    assert payment["paymentAmount"] == {"value": 19.99, "currency": "USD"}
    assert captured["paymentAmount"] == {"value": 800, "currency": "JPY"}
    assert refunded["paymentAmount"] == {"value": -0.99, "currency": "USD"}
    for resource in queued:
        assert resource["payload"]["extension"][0]["valueReference"] == {"reference": "Patient/p-1"}
        assert validate(resource["payload"]) == []


async def test_nothing_is_queued_without_phi(payments: PaymentsHarness) -> None:
    patient = await payments.ok("/v1/customers", {"metadata[patient]": "Patient/p-1"})
    await payments.paid_intent(customer=patient["id"])
    assert await payments.count("outbox_messages") == 0


def test_a_phi_url_needs_the_gateways_client_secret(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="phi_url needs phi_client_secret"):
        payments_settings_for("sqlite+medmesh:///x.db", tmp_path, phi_url="http://phi")


def test_records_are_r4_payment_reconciliations() -> None:
    payment = payment_record("pi_01", "ch_01", 2500, "usd", "Patient/p-1", WHEN)
    assert payment == {
        "resourceType": "PaymentReconciliation",
        "id": "pi-01",
        "extension": [
            {
                "url": "http://hl7.org/fhir/5.0/StructureDefinition/"
                "extension-PaymentReconciliation.paymentIssuer",
                "valueReference": {"reference": "Patient/p-1"},
            }
        ],
        "identifier": [{"system": "urn:medmesh:payments:payment_intent", "value": "pi_01"}],
        "status": "active",
        "created": "2026-12-04T09:30:15Z",
        "paymentDate": "2026-12-04",
        "paymentAmount": {"value": 25.0, "currency": "USD"},
        "paymentIdentifier": {"system": "urn:medmesh:payments:charge", "value": "ch_01"},
        "outcome": "complete",
        "disposition": "card payment captured",
        "detail": [
            {
                "identifier": {"system": "urn:medmesh:payments:payment_intent", "value": "pi_01"},
                "date": "2026-12-04",
                "amount": {"value": 25.0, "currency": "USD"},
                "type": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/payment-type",
                            "code": "payment",
                        }
                    ]
                },
            }
        ],
    }
    refund = refund_record("re_01", "pi_01", "ch_01", 1250, "kwd", "Patient/p-1", WHEN)
    assert refund["paymentAmount"] == {"value": -1.25, "currency": "KWD"}
    assert refund["detail"][0]["predecessor"] == {
        "system": "urn:medmesh:payments:payment_intent",
        "value": "pi_01",
    }
    assert validate(payment) == validate(refund) == []
    assert money(500, "jpy") == {"value": 500, "currency": "JPY"}
