"""Queries of refunds, scoped through their payment intent to what the caller may read."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Select, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.payments.models import ChargeRow, CustomerRow, PaymentIntentRow, RefundRow
from medmesh.payments.paging import ListPage
from medmesh.payments.scoping import Caller


def readable_refunds(caller: Caller) -> Select[tuple[RefundRow]]:
    stmt = select(RefundRow)
    if caller.patient_ref is not None:
        own = select(PaymentIntentRow.id).where(
            PaymentIntentRow.customer_id.in_(
                select(CustomerRow.id).where(CustomerRow.patient_ref == caller.patient_ref)
            )
        )
        stmt = stmt.where(RefundRow.payment_intent_id.in_(own))
    return stmt


class RefundRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, caller: Caller, refund_id: str) -> RefundRow | None:
        stmt = readable_refunds(caller).where(RefundRow.id == refund_id)
        return (await self.session.scalars(stmt)).one_or_none()

    async def page(
        self, caller: Caller, page: ListPage, payment_intent_id: str | None, charge_id: str | None
    ) -> Sequence[RefundRow]:
        stmt = readable_refunds(caller)
        if payment_intent_id is not None:
            stmt = stmt.where(RefundRow.payment_intent_id == payment_intent_id)
        if charge_id is not None:
            stmt = stmt.where(RefundRow.charge_id == charge_id)
        return (await self.session.scalars(page.narrow(stmt, RefundRow.id))).all()

    async def charge_intent(self, charge_id: str) -> str | None:
        intent_id: str | None = await self.session.scalar(
            select(ChargeRow.payment_intent_id).where(ChargeRow.id == charge_id)
        )
        return intent_id

    async def take(self, intent_id: str, amount: int) -> bool:
        """Add ``amount`` to the intent's refunded total if it stays within what was received:
        one conditional UPDATE, so racing refunds never exceed it."""
        stmt = (
            update(PaymentIntentRow)
            .where(
                PaymentIntentRow.id == intent_id,
                PaymentIntentRow.status == "succeeded",
                PaymentIntentRow.amount_refunded + amount <= PaymentIntentRow.amount_received,
            )
            .values(amount_refunded=PaymentIntentRow.amount_refunded + amount)
            .execution_options(synchronize_session=False)
        )
        result: CursorResult[object] = await self.session.execute(stmt)  # type: ignore[assignment]
        return result.rowcount == 1

    async def add(self, row: RefundRow) -> None:
        self.session.add(row)
        await self.session.flush()
