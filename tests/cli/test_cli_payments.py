"""The ``medmesh`` command for payment-gateway: migrate, serve's app, audit verify, OpenAPI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medmesh.cli import SERVICES, openapi_document
from medmesh.platform.testing import TokenFactory
from tests.cli.commands import invoke, verify_then_tamper
from tests.payments.conftest import payments_settings_for, run_payments

REPO = Path(__file__).resolve().parents[2]


def test_payments_is_a_service_of_the_cli_and_documents_its_api() -> None:
    assert list(SERVICES)[:4] == ["auth", "phi", "synthetic", "payments"]
    document = openapi_document("payments")
    assert document["info"]["title"] == "medmesh payment-gateway"
    assert {
        "/v1/customers",
        "/v1/payment_methods",
        "/v1/payment_intents",
        "/v1/payment_intents/{intent_id}/capture",
        "/v1/refunds",
        "/v1/events",
        "/v1/webhook_endpoints",
        "/v1/ledger/reconciliation",
    } <= set(document["paths"])
    committed = json.loads((REPO / "docs" / "openapi" / "payments.json").read_text())
    assert committed["info"]["title"] == "medmesh payment-gateway"


async def test_migrate_payments_on_a_fresh_database(tmp_path: Path) -> None:
    env = {"MEDMESH_PAYMENTS_VAR_DIR": str(tmp_path), "MEDMESH_PAYMENTS_DATABASE_URL": ""}
    for _ in range(2):
        result = await invoke(["migrate", "payments"], env)
        assert result.exit_code == 0, result.output
        assert result.output == "payments: database is at the latest revision\n"
    assert (tmp_path / "payments.db").is_file()


@pytest.mark.postgres
async def test_audit_verify_payments_detects_an_edited_record(
    database_url: str, tmp_path: Path, token_factory: TokenFactory
) -> None:
    settings = payments_settings_for(database_url, tmp_path)
    async with run_payments(settings, token_factory) as payments:
        await payments.ok("/v1/customers", {"email": "jo@example.org"})
        await payments.paid_intent(2500)
    env = {
        "MEDMESH_PAYMENTS_DATABASE_URL": settings.effective_database_url,
        "MEDMESH_PAYMENTS_VAR_DIR": str(tmp_path),
    }
    await verify_then_tamper("payments", settings.effective_database_url, env)
