"""Queries of the ledger and of the payment totals it is reconciled with."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.payments.models import ChargeRow, LedgerEntryRow, PaymentIntentRow, RefundRow
from medmesh.payments.paging import ListPage
from medmesh.payments.rows import insert_of
from medmesh.platform.db import execute_together


class LedgerRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, entries: list[dict[str, Any]]) -> None:
        """Insert entries given as column values."""
        await execute_together(self.session, [insert_of(LedgerEntryRow, entries)])

    async def balances(self) -> list[tuple[str, str, int, int]]:
        """(account, currency, debits, credits) of every account."""
        debit = case((LedgerEntryRow.direction == "debit", LedgerEntryRow.amount), else_=0)
        credit = case((LedgerEntryRow.direction == "credit", LedgerEntryRow.amount), else_=0)
        stmt = (
            select(
                LedgerEntryRow.account,
                LedgerEntryRow.currency,
                func.coalesce(func.sum(debit), 0),
                func.coalesce(func.sum(credit), 0),
            )
            .group_by(LedgerEntryRow.account, LedgerEntryRow.currency)
            .order_by(LedgerEntryRow.account, LedgerEntryRow.currency)
        )
        return [(a, c, int(d), int(k)) for a, c, d, k in (await self.session.execute(stmt)).all()]

    async def captured_by_currency(self) -> dict[str, int]:
        stmt = (
            select(PaymentIntentRow.currency, func.sum(PaymentIntentRow.amount_received))
            .where(PaymentIntentRow.status == "succeeded")
            .group_by(PaymentIntentRow.currency)
        )
        return {c: int(s or 0) for c, s in (await self.session.execute(stmt)).all()}

    async def refunded_by_currency(self) -> dict[str, int]:
        stmt = (
            select(RefundRow.currency, func.sum(RefundRow.amount))
            .where(RefundRow.status == "succeeded")
            .group_by(RefundRow.currency)
        )
        return {c: int(s or 0) for c, s in (await self.session.execute(stmt)).all()}

    async def intents_refunded_by_currency(self) -> dict[str, int]:
        stmt = select(
            PaymentIntentRow.currency, func.sum(PaymentIntentRow.amount_refunded)
        ).group_by(PaymentIntentRow.currency)
        return {c: int(s or 0) for c, s in (await self.session.execute(stmt)).all()}

    async def fees_by_currency(self) -> dict[str, int]:
        stmt = select(ChargeRow.currency, func.sum(ChargeRow.fee)).group_by(ChargeRow.currency)
        return {c: int(s or 0) for c, s in (await self.session.execute(stmt)).all()}

    async def entries_of_customer(
        self, customer_id: str, page: ListPage
    ) -> Sequence[LedgerEntryRow]:
        stmt = select(LedgerEntryRow).where(LedgerEntryRow.customer_id == customer_id)
        return (await self.session.scalars(page.narrow(stmt, LedgerEntryRow.id))).all()
