"""Refunds of succeeded payment intents: full (the default) or partial, several per payment,
together never more than was captured."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.payments.connectors import Connector
from medmesh.payments.errors import InvalidRequest, ParameterMissing, ResourceMissing
from medmesh.payments.events.recording import record_event
from medmesh.payments.ledger.service import LedgerService
from medmesh.payments.models import RefundRow
from medmesh.payments.objects import new_id
from medmesh.payments.paging import ListPage
from medmesh.payments.params import merge_metadata
from medmesh.payments.patient_records.recording import PatientRecords
from medmesh.payments.payment_intents.service import PaymentIntentService
from medmesh.payments.refunds.repository import RefundRepository
from medmesh.payments.refunds.schemas import refund_object
from medmesh.payments.scoping import Caller
from medmesh.platform.db import utcnow


class RefundService:
    def __init__(
        self,
        connector: Connector,
        intents: PaymentIntentService,
        ledger: LedgerService,
        records: PatientRecords,
    ) -> None:
        self.connector = connector
        self.intents = intents
        self.ledger = ledger
        self.records = records

    async def create(
        self, session: AsyncSession, caller: Caller, params: dict[str, Any]
    ) -> dict[str, Any]:
        repository = RefundRepository(session)
        intent_id = params.get("payment_intent")
        if intent_id is None and params.get("charge"):
            intent_id = await repository.charge_intent(params["charge"])
            if intent_id is None:
                raise ResourceMissing(f"No such charge: '{params['charge']}'", param="charge")
        if intent_id is None:
            raise ParameterMissing(
                "One of the following params should be provided for this request: "
                "payment_intent or charge.",
                param="payment_intent",
            )
        intent = await self.intents.get_row(session, caller, intent_id)
        if intent.status != "succeeded" or intent.latest_charge is None:
            raise InvalidRequest(
                f"This PaymentIntent does not have a successful charge to refund "
                f"(its status is {intent.status}).",
                code="charge_not_refundable",
                param="payment_intent",
            )
        remaining = intent.amount_received - intent.amount_refunded
        amount = params.get("amount", remaining)
        if remaining <= 0:
            raise InvalidRequest(
                f"Charge {intent.latest_charge} has already been refunded.",
                code="charge_already_refunded",
            )
        if not await repository.take(intent.id, amount):
            raise InvalidRequest(
                f"Refund amount ({amount}) is greater than unrefunded amount on charge "
                f"({remaining})",
                code="amount_too_large",
                param="amount",
            )
        await self.connector.refund(intent.latest_charge, amount, intent.currency)
        row = RefundRow(
            id=new_id("re"),
            payment_intent_id=intent.id,
            charge_id=intent.latest_charge,
            amount=amount,
            currency=intent.currency,
            status="succeeded",
            reason=params.get("reason"),
            metadata_={k: v for k, v in (params.get("metadata") or {}).items() if v != ""},
            created=utcnow(),
        )
        await repository.add(row)
        await self.ledger.refund(
            session, amount, intent.currency, intent.id, intent.customer_id, row.id
        )
        await self.records.refund_succeeded(
            session,
            refund_id=row.id,
            intent_id=intent.id,
            charge_id=row.charge_id,
            amount=amount,
            currency=intent.currency,
            customer_id=intent.customer_id,
            when=row.created,
        )
        obj = refund_object(row)
        await record_event(session, "refund.created", obj)
        return obj

    async def get_row(self, session: AsyncSession, caller: Caller, refund_id: str) -> RefundRow:
        row = await RefundRepository(session).get(caller, refund_id)
        if row is None:
            raise ResourceMissing(f"No such refund: '{refund_id}'", param="id")
        return row

    async def retrieve(
        self, session: AsyncSession, caller: Caller, refund_id: str
    ) -> dict[str, Any]:
        return refund_object(await self.get_row(session, caller, refund_id))

    async def update(
        self, session: AsyncSession, caller: Caller, refund_id: str, params: dict[str, Any]
    ) -> dict[str, Any]:
        row = await self.get_row(session, caller, refund_id)
        if "metadata" in params:
            row.metadata_ = merge_metadata(row.metadata_, params["metadata"])
        await session.flush()
        obj = refund_object(row)
        await record_event(session, "refund.updated", obj)
        return obj

    async def list(
        self, session: AsyncSession, caller: Caller, params: dict[str, Any]
    ) -> dict[str, Any]:
        page = ListPage.of(params)
        fetched = await RefundRepository(session).page(
            caller, page, params.get("payment_intent"), params.get("charge")
        )
        return page.listed("/v1/refunds", fetched, refund_object)
