"""The double-entry ledger: every capture and refund is a transaction of entries whose debits
equal its credits, written in the transaction of the payment change itself.

Accounts: ``processor_receivable`` (what the processor owes the clinic), ``patient_payments``
(captured from patients), ``patient_refunds`` (returned to them), ``processing_fees`` (what the
processor keeps). A capture debits the receivable and credits patient payments; its fee debits
processing fees and credits the receivable; a refund debits patient refunds and credits the
receivable. The reconciliation checks, per currency, that debits equal credits and that the
ledger's captures, refunds and fees equal the payment intents', refunds' and charges' own
totals.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.payments.ledger.repository import LedgerRepository
from medmesh.payments.models import LedgerEntryRow
from medmesh.payments.objects import new_id, unix
from medmesh.payments.paging import ListPage
from medmesh.platform.db import utcnow

RECEIVABLE, PAYMENTS, REFUNDS = "processor_receivable", "patient_payments", "patient_refunds"
FEES = "processing_fees"


def entry_object(row: LedgerEntryRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "object": "ledger_entry",
        "transaction": row.transaction_id,
        "kind": row.kind,
        "account": row.account,
        "direction": row.direction,
        "amount": row.amount,
        "currency": row.currency,
        "payment_intent": row.payment_intent_id,
        "refund": row.refund_id,
        "customer": row.customer_id,
        "created": unix(row.created),
    }


class LedgerService:
    def _entries(
        self,
        kind: str,
        debit: str,
        credit: str,
        amount: int,
        currency: str,
        *,
        payment_intent_id: str,
        customer_id: str | None,
        refund_id: str | None = None,
    ) -> list[dict[str, Any]]:
        transaction, now = new_id("ltx"), utcnow()
        return [
            {
                "id": new_id("le"),
                "transaction_id": transaction,
                "kind": kind,
                "account": account,
                "direction": direction,
                "amount": amount,
                "currency": currency,
                "payment_intent_id": payment_intent_id,
                "refund_id": refund_id,
                "customer_id": customer_id,
                "created": now,
            }
            for account, direction in ((debit, "debit"), (credit, "credit"))
        ]

    def capture_entries(
        self,
        amount: int,
        fee: int,
        currency: str,
        payment_intent_id: str,
        customer_id: str | None,
    ) -> list[dict[str, Any]]:
        """The entries of a capture, and of the processor's fee for it (when there is one)."""
        rows = self._entries(
            "capture",
            RECEIVABLE,
            PAYMENTS,
            amount,
            currency,
            payment_intent_id=payment_intent_id,
            customer_id=customer_id,
        )
        if fee:
            rows += self._entries(
                "fee",
                FEES,
                RECEIVABLE,
                fee,
                currency,
                payment_intent_id=payment_intent_id,
                customer_id=customer_id,
            )
        return rows

    async def capture(
        self,
        session: AsyncSession,
        amount: int,
        fee: int,
        currency: str,
        payment_intent_id: str,
        customer_id: str | None,
    ) -> None:
        """Post :meth:`capture_entries`."""
        rows = self.capture_entries(amount, fee, currency, payment_intent_id, customer_id)
        await LedgerRepository(session).add(rows)

    async def refund(
        self,
        session: AsyncSession,
        amount: int,
        currency: str,
        payment_intent_id: str,
        customer_id: str | None,
        refund_id: str,
    ) -> None:
        rows = self._entries(
            "refund",
            REFUNDS,
            RECEIVABLE,
            amount,
            currency,
            payment_intent_id=payment_intent_id,
            customer_id=customer_id,
            refund_id=refund_id,
        )
        await LedgerRepository(session).add(rows)

    async def balances(self, session: AsyncSession) -> dict[str, Any]:
        """Each account's debits, credits and balance (debits minus credits) per currency."""
        rows = await LedgerRepository(session).balances()
        data = [
            {
                "account": account,
                "currency": currency,
                "debits": debits,
                "credits": credits,
                "balance": debits - credits,
            }
            for account, currency, debits, credits in rows
        ]
        return {"object": "ledger_balances", "data": data}

    async def reconcile(self, session: AsyncSession) -> dict[str, Any]:
        """Whether the ledger agrees with the payments, per currency."""
        repository = LedgerRepository(session)
        sums: dict[tuple[str, str], tuple[int, int]] = {
            (a, c): (d, k) for a, c, d, k in await repository.balances()
        }
        captured = await repository.captured_by_currency()
        refunded = await repository.refunded_by_currency()
        intents_refunded = await repository.intents_refunded_by_currency()
        fees = await repository.fees_by_currency()
        currencies = sorted(
            {c for _, c in sums} | {c for c, v in captured.items() if v} | set(refunded)
        )
        results = []
        for currency in currencies:
            debits = sum(d for (_, c), (d, _k) in sums.items() if c == currency)
            credits = sum(k for (_, c), (_d, k) in sums.items() if c == currency)
            ledger_captured = sums.get((PAYMENTS, currency), (0, 0))[1]
            ledger_refunded = sums.get((REFUNDS, currency), (0, 0))[0]
            ledger_fees = sums.get((FEES, currency), (0, 0))[0]
            checks = {
                "debits_equal_credits": debits == credits,
                "captures_match": ledger_captured == captured.get(currency, 0),
                "refunds_match": ledger_refunded
                == refunded.get(currency, 0)
                == intents_refunded.get(currency, 0),
                "fees_match": ledger_fees == fees.get(currency, 0),
            }
            results.append(
                {
                    "currency": currency,
                    "debits": debits,
                    "credits": credits,
                    "captured": captured.get(currency, 0),
                    "ledger_captured": ledger_captured,
                    "refunded": refunded.get(currency, 0),
                    "ledger_refunded": ledger_refunded,
                    "fees": fees.get(currency, 0),
                    "ledger_fees": ledger_fees,
                    "checks": checks,
                    "balanced": all(checks.values()),
                }
            )
        return {
            "object": "reconciliation",
            "balanced": all(r["balanced"] for r in results),
            "currencies": results,
        }

    async def statement(
        self, session: AsyncSession, customer_id: str, page: ListPage
    ) -> dict[str, Any]:
        """The ledger entries of one customer's payments and refunds, newest first."""
        fetched = await LedgerRepository(session).entries_of_customer(customer_id, page)
        url = f"/v1/customers/{customer_id}/statement"
        return page.listed(url, fetched, entry_object)
