"""What the processor's answer to a confirmation makes of a payment intent: its new columns,
the event, the rows that go with it (the charge, the capture's ledger entries) and, for a
decline, the card error. Computed in memory, so a new intent is inserted in its final state
and an existing one changed by one conditional UPDATE from ``processing``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from medmesh.payments.connectors import Authorization, Connector
from medmesh.payments.errors import CardError
from medmesh.payments.ledger.service import LedgerService
from medmesh.payments.models import (
    ChargeRow,
    LedgerEntryRow,
    PaymentIntentRow,
    PaymentMethodRow,
    PaymentsBase,
)
from medmesh.payments.objects import new_id
from medmesh.payments.payment_methods.schemas import payment_method_object
from medmesh.payments.rows import insert_of, inserts, plain_row
from medmesh.platform.db import Statement, utcnow


@dataclass
class Settlement:
    #: The intent's new column values (attribute names).
    values: dict[str, Any]
    event: str
    #: The new charge, and the capture's ledger entries (column values).
    charge: ChargeRow | None = None
    entries: list[dict[str, Any]] = field(default_factory=list)
    #: The captured charge (a payment that succeeded).
    captured: ChargeRow | None = None
    error: CardError | None = None


def settlement_writes(settled: Settlement, *before: PaymentsBase) -> list[Statement]:
    """The inserts of ``before`` (new rows the intent refers to, or the intent itself), the
    charge and the ledger entries, in that order, to run together."""
    rows = [*before] if settled.charge is None else [*before, settled.charge]
    statements = inserts(rows)
    if settled.entries:
        statements.append(insert_of(LedgerEntryRow, settled.entries))
    return statements


async def settle(
    connector: Connector,
    ledger: LedgerService,
    public_url: str,
    intent: PaymentIntentRow,
    method: PaymentMethodRow | None,
    answer: Authorization,
) -> Settlement:
    """The outcome of ``answer`` for ``intent`` (``processing``) paid with ``method``; an
    approved automatic-capture payment is captured at the processor here."""
    if answer.outcome == "requires_action":
        url = f"{public_url}/v1/payment_intents/{intent.id}/three_d_secure"
        action = {"type": "redirect_to_url", "redirect_to_url": {"url": url, "return_url": None}}
        return Settlement(
            {"status": "requires_action", "next_action": action}, "payment_intent.requires_action"
        )
    if answer.outcome == "declined":
        error = CardError(
            answer.message or "Your card was declined.",
            code=answer.code or "card_declined",
            decline_code=answer.decline_code,
        )
        failure = error.body()
        if method is not None:
            failure["payment_method"] = payment_method_object(method)
        values: dict[str, Any] = {
            "status": "requires_payment_method",
            "payment_method_id": None,
            "next_action": None,
            "last_payment_error": failure,
        }
        return Settlement(values, "payment_intent.payment_failed", error=error)
    charge = plain_row(
        ChargeRow,
        id=new_id("ch"),
        payment_intent_id=intent.id,
        payment_method_id=str(intent.payment_method_id),
        amount=intent.amount,
        amount_captured=0,
        fee=0,
        currency=intent.currency,
        processor_reference=answer.network_reference or "",
        created=utcnow(),
    )
    common: dict[str, Any] = {"latest_charge": charge.id, "next_action": None}
    if intent.capture_method == "manual":
        values = {**common, "status": "requires_capture", "amount_capturable": intent.amount}
        return Settlement(values, "payment_intent.amount_capturable_updated", charge)
    charge.fee = await connector.capture(charge.processor_reference, intent.amount, intent.currency)
    charge.amount_captured = intent.amount
    entries = ledger.capture_entries(
        intent.amount, charge.fee, intent.currency, intent.id, intent.customer_id
    )
    values = {**common, "status": "succeeded", "amount_received": intent.amount}
    return Settlement(values, "payment_intent.succeeded", charge, entries, captured=charge)
