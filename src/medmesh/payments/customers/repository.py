"""Queries of customers, scoped to what the caller may read."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.payments.models import CustomerRow
from medmesh.payments.paging import ListPage
from medmesh.payments.scoping import Caller
from medmesh.platform.db import WriteTransaction


def readable_customers(caller: Caller) -> Select[tuple[CustomerRow]]:
    """The customers ``caller`` may see: all, or a patient-bound caller's own."""
    stmt = select(CustomerRow)
    if caller.patient_ref is not None:
        stmt = stmt.where(CustomerRow.patient_ref == caller.patient_ref)
    return stmt


_PATIENT_OF = select(CustomerRow.patient_ref).where(CustomerRow.id == bindparam("b_id"))


async def patient_in(tx: WriteTransaction, customer_id: str) -> str | None:
    """The FHIR Patient reference a customer carries, as the write transaction ``tx`` sees it."""
    rows = await tx.all(_PATIENT_OF, {"b_id": customer_id})
    return rows[0][0] if rows else None


class CustomerRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, caller: Caller, customer_id: str) -> CustomerRow | None:
        stmt = readable_customers(caller).where(CustomerRow.id == customer_id)
        return (await self.session.scalars(stmt)).one_or_none()

    async def page(self, caller: Caller, page: ListPage, **filters: Any) -> Sequence[CustomerRow]:
        stmt = readable_customers(caller).where(CustomerRow.deleted.is_(False))
        if filters.get("email") is not None:
            stmt = stmt.where(CustomerRow.email == filters["email"])
        return (await self.session.scalars(page.narrow(stmt, CustomerRow.id))).all()

    async def patient_of(self, customer_id: str) -> str | None:
        """The FHIR Patient reference a customer carries (``metadata[patient]``), if any."""
        stmt = select(CustomerRow.patient_ref).where(CustomerRow.id == customer_id)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def add(self, row: CustomerRow) -> None:
        self.session.add(row)
        await self.session.flush()
