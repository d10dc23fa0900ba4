"""Customers: create, retrieve, update, delete (Stripe keeps a deleted stub), list."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.payments.customers.repository import CustomerRepository
from medmesh.payments.customers.schemas import PATIENT_KEY, customer_object
from medmesh.payments.errors import InvalidRequest, ResourceMissing
from medmesh.payments.events.recording import record_event
from medmesh.payments.models import CustomerRow
from medmesh.payments.objects import new_id
from medmesh.payments.paging import ListPage
from medmesh.payments.params import merge_metadata
from medmesh.payments.scoping import Caller, canonical_patient_ref
from medmesh.platform.db import utcnow
from medmesh.platform.errors import Forbidden


def _patient_of(caller: Caller, meta: dict[str, str]) -> str | None:
    raw = meta.get(PATIENT_KEY)
    ref = canonical_patient_ref(raw) if raw else None
    if raw and ref is None:
        raise InvalidRequest(
            "metadata[patient] must be a FHIR Patient reference (Patient/<id>)",
            param=f"metadata[{PATIENT_KEY}]",
        )
    if caller.patient_ref is not None and ref != caller.patient_ref:
        raise Forbidden("a patient-bound token manages only its own patient's customer")
    return ref


class CustomerService:
    async def create(
        self, session: AsyncSession, caller: Caller, params: dict[str, Any]
    ) -> dict[str, Any]:
        meta = params.get("metadata") or {}
        meta = {k: v for k, v in meta.items() if v != ""}
        if caller.patient_ref is not None and PATIENT_KEY not in meta:
            meta[PATIENT_KEY] = caller.patient_ref
        row = CustomerRow(
            id=new_id("cus"),
            email=params.get("email"),
            name=params.get("name"),
            phone=params.get("phone"),
            description=params.get("description"),
            metadata_=meta,
            patient_ref=_patient_of(caller, meta),
            deleted=False,
            created=utcnow(),
        )
        await CustomerRepository(session).add(row)
        obj = customer_object(row)
        await record_event(session, "customer.created", obj)
        return obj

    async def get_row(self, session: AsyncSession, caller: Caller, customer_id: str) -> CustomerRow:
        row = await CustomerRepository(session).get(caller, customer_id)
        if row is None:
            raise ResourceMissing(f"No such customer: '{customer_id}'", param="id")
        return row

    async def retrieve(
        self, session: AsyncSession, caller: Caller, customer_id: str
    ) -> dict[str, Any]:
        return customer_object(await self.get_row(session, caller, customer_id))

    async def update(
        self, session: AsyncSession, caller: Caller, customer_id: str, params: dict[str, Any]
    ) -> dict[str, Any]:
        row = await self.get_row(session, caller, customer_id)
        if row.deleted:
            raise ResourceMissing(f"No such customer: '{customer_id}'", param="id")
        for name in ("email", "name", "phone", "description"):
            if name in params:
                setattr(row, name, params[name] or None)
        if "metadata" in params:
            row.metadata_ = merge_metadata(row.metadata_, params["metadata"])
            row.patient_ref = _patient_of(caller, row.metadata_)
        await session.flush()
        obj = customer_object(row)
        await record_event(session, "customer.updated", obj)
        return obj

    async def delete(
        self, session: AsyncSession, caller: Caller, customer_id: str
    ) -> dict[str, Any]:
        row = await self.get_row(session, caller, customer_id)
        if row.deleted:
            raise ResourceMissing(f"No such customer: '{customer_id}'", param="id")
        row.deleted = True
        await session.flush()
        obj = customer_object(row)
        await record_event(session, "customer.deleted", obj)
        return obj

    async def list(
        self, session: AsyncSession, caller: Caller, params: dict[str, Any]
    ) -> dict[str, Any]:
        page = ListPage.of(params)
        fetched = await CustomerRepository(session).page(caller, page, email=params.get("email"))
        return page.listed("/v1/customers", fetched, customer_object)
