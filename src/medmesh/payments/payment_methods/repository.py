"""Queries of payment methods, scoped to what the caller may read."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Select, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.payments.models import CustomerRow, PaymentMethodRow
from medmesh.payments.paging import ListPage
from medmesh.payments.scoping import Caller


def readable_payment_methods(caller: Caller) -> Select[tuple[PaymentMethodRow]]:
    """All, or for a patient-bound caller those of its customer and those on no customer yet
    (so it can attach the card it just created)."""
    stmt = select(PaymentMethodRow)
    if caller.patient_ref is not None:
        own = select(CustomerRow.id).where(CustomerRow.patient_ref == caller.patient_ref)
        stmt = stmt.where(
            or_(PaymentMethodRow.customer_id.is_(None), PaymentMethodRow.customer_id.in_(own))
        )
    return stmt


class PaymentMethodRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, caller: Caller, payment_method_id: str) -> PaymentMethodRow | None:
        stmt = readable_payment_methods(caller).where(PaymentMethodRow.id == payment_method_id)
        return (await self.session.scalars(stmt)).one_or_none()

    async def page(
        self, caller: Caller, page: ListPage, customer_id: str | None
    ) -> Sequence[PaymentMethodRow]:
        stmt = readable_payment_methods(caller)
        if customer_id is not None:
            stmt = stmt.where(PaymentMethodRow.customer_id == customer_id)
        return (await self.session.scalars(page.narrow(stmt, PaymentMethodRow.id))).all()

    async def add(self, row: PaymentMethodRow) -> None:
        self.session.add(row)
        await self.session.flush()
