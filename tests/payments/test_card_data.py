"""PCI hygiene: after card payments, declines and refused input, no test card number is in the
database, the files next to it or the log lines. (A security code is too short to search for:
its digits occur by chance in ids; it has no column and no response carries it.)"""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import pytest
from sqlalchemy import text

from medmesh.payments.payment_methods.cards import CardFingerprints
from medmesh.platform.testing import LogLines
from tests.payments.conftest import TEST_NUMBERS, PaymentsHarness

CVC = "9183"


def _file_bytes(folder: Path) -> bytes:
    """Every file under ``folder`` (the SQLite databases, their WAL, audit checkpoints)."""
    return b"".join(p.read_bytes() for p in folder.rglob("*") if p.is_file())


def _card(number: str) -> dict[str, str]:
    return {
        "type": "card",
        "card[number]": number,
        "card[exp_month]": "11",
        "card[exp_year]": "2033",
        "card[cvc]": CVC,
    }


@pytest.mark.postgres
async def test_no_card_number_is_kept_or_logged(
    payments: PaymentsHarness, log_lines: LogLines, tmp_path: Path
) -> None:
    for number in TEST_NUMBERS:
        response = await payments.post(
            "/v1/payment_methods", _card(number), **{"Idempotency-Key": number[-6:]}
        )
        assert number not in response.text
        if response.status_code != 200:
            continue
        paid = await payments.post(
            "/v1/payment_intents",
            {
                "amount": 700,
                "currency": "usd",
                "payment_method": response.json()["id"],
                "confirm": "true",
            },
        )
        assert number not in paid.text
    refused = [
        await payments.post(
            "/v1/payment_methods", {**_card("4242424242424242"), "card[pan]": "4242424242424242"}
        ),
        await payments.post(
            "/v1/payment_methods",
            {**_card("4242424242424242"), "card[exp_month]": "4242424242424242"},
        ),
        await payments.post("/v1/customers", {"description": "4242424242424242" * 100}),
    ]
    for response in refused:
        assert response.status_code == 400
        assert "4242424242424242" not in response.text

    stored: list[str] = []
    async with payments.database.engine.connect() as conn:
        for table in (
            "customers",
            "payment_methods",
            "payment_intents",
            "charges",
            "refunds",
            "idempotency_keys",
            "ledger_entries",
            "events",
            "webhook_endpoints",
            "outbox_messages",
            "audit_log",
        ):
            stored.extend(
                str(row) for row in (await conn.execute(text(f"SELECT * FROM {table}"))).all()
            )
    files = await asyncio.to_thread(_file_bytes, tmp_path)
    for number in TEST_NUMBERS:
        assert not any(number in row for row in stored), number
        assert number.encode() not in files, number
        assert number not in log_lines.text, number


def test_production_refuses_to_start_without_a_fingerprint_key(tmp_path: Path) -> None:
    with pytest.raises(
        RuntimeError, match="MEDMESH_PAYMENTS_FINGERPRINT_KEY must be set in production"
    ):
        CardFingerprints.from_setting("", tmp_path, "production")
    assert list(tmp_path.iterdir()) == []
    key = base64.urlsafe_b64encode(bytes(range(32))).decode().rstrip("=")
    configured = CardFingerprints.from_setting(key, tmp_path, "production")
    assert configured.of("4242424242424242") == CardFingerprints(bytes(range(32))).of(
        "4242424242424242"
    )
    developed = CardFingerprints.from_setting("", tmp_path)
    assert (tmp_path / "payments-fingerprint.key").stat().st_mode & 0o777 == 0o600
    assert CardFingerprints.from_setting("", tmp_path).of("1") == developed.of("1")
