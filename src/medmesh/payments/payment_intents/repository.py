"""Queries of payment intents and their charges. A state change is one conditional UPDATE
(``WHERE status IN (...)``): of two racing requests exactly one changes the row, on SQLite and
PostgreSQL alike, and the other sees that nothing changed."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.payments.models import ChargeRow, CustomerRow, PaymentIntentRow
from medmesh.payments.paging import ListPage
from medmesh.payments.scoping import Caller


def readable_payment_intents(caller: Caller) -> Select[tuple[PaymentIntentRow]]:
    """All, or a patient-bound caller's: those of its customer."""
    stmt = select(PaymentIntentRow)
    if caller.patient_ref is not None:
        own = select(CustomerRow.id).where(CustomerRow.patient_ref == caller.patient_ref)
        stmt = stmt.where(PaymentIntentRow.customer_id.in_(own))
    return stmt


class PaymentIntentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, caller: Caller, intent_id: str) -> PaymentIntentRow | None:
        stmt = readable_payment_intents(caller).where(PaymentIntentRow.id == intent_id)
        stmt = stmt.execution_options(populate_existing=True)
        return (await self.session.scalars(stmt)).one_or_none()

    async def get_unscoped(self, intent_id: str) -> PaymentIntentRow | None:
        """For the 3-D Secure return, which the client secret authorizes instead of a token."""
        return await self.session.get(PaymentIntentRow, intent_id, populate_existing=True)

    async def page(
        self, caller: Caller, page: ListPage, customer_id: str | None
    ) -> Sequence[PaymentIntentRow]:
        stmt = readable_payment_intents(caller)
        if customer_id is not None:
            stmt = stmt.where(PaymentIntentRow.customer_id == customer_id)
        return (await self.session.scalars(page.narrow(stmt, PaymentIntentRow.id))).all()

    async def transition(
        self,
        intent_id: str,
        from_states: Collection[str],
        values: dict[str, Any],
        *conditions: ColumnElement[bool],
    ) -> bool:
        """Set ``values`` when the intent is in one of ``from_states`` (and ``conditions``
        hold); True when this call changed it."""
        stmt = (
            update(PaymentIntentRow)
            .where(
                PaymentIntentRow.id == intent_id,
                PaymentIntentRow.status.in_(list(from_states)),
                *conditions,
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        result: CursorResult[Any] = await self.session.execute(stmt)  # type: ignore[assignment]
        return result.rowcount == 1

    async def charge(self, charge_id: str) -> ChargeRow | None:
        return await self.session.get(ChargeRow, charge_id, populate_existing=True)
