"""Card payment methods: tokenized at once (the connector keeps the card; brand, last4,
expiry and a keyed fingerprint are kept here; number and CVC are dropped), attach, detach."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.payments.connectors import CardDetails, Connector
from medmesh.payments.customers.service import CustomerService
from medmesh.payments.errors import InvalidRequest, ParameterMissing, ResourceMissing
from medmesh.payments.events.recording import record_event
from medmesh.payments.models import PaymentMethodRow
from medmesh.payments.objects import new_id
from medmesh.payments.paging import ListPage
from medmesh.payments.params import merge_metadata
from medmesh.payments.payment_methods.cards import TEST_PAYMENT_METHODS, CardFingerprints
from medmesh.payments.payment_methods.repository import PaymentMethodRepository
from medmesh.payments.payment_methods.schemas import billing_details, payment_method_object
from medmesh.payments.rows import plain_row
from medmesh.payments.scoping import Caller
from medmesh.platform.db import SessionSource, utcnow


class PaymentMethodService:
    def __init__(
        self, connector: Connector, fingerprints: CardFingerprints, customers: CustomerService
    ) -> None:
        self.connector = connector
        self.fingerprints = fingerprints
        self.customers = customers

    def _tokenized(
        self,
        card: CardDetails,
        billing: dict[str, Any] | None = None,
        meta: dict[str, str] | None = None,
    ) -> PaymentMethodRow:
        """A new payment method of ``card`` (the connector keeps the card), not yet stored."""
        return PaymentMethodRow(**self._card_values(card, billing, meta))

    def _card_values(
        self,
        card: CardDetails,
        billing: dict[str, Any] | None = None,
        meta: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """The attributes of a new payment method of ``card``."""
        tokenized = self.connector.tokenize(card)
        return dict(
            id=new_id("pm"),
            type="card",
            customer_id=None,
            brand=tokenized.brand,
            last4=tokenized.last4,
            exp_month=tokenized.exp_month,
            exp_year=tokenized.exp_year,
            funding=tokenized.funding,
            country=tokenized.country,
            fingerprint=self.fingerprints.of(card.number),
            connector=self.connector.name,
            processor_token=tokenized.processor_token,
            billing_details=billing_details(billing),
            metadata_={k: v for k, v in (meta or {}).items() if v != ""},
            created=utcnow(),
        )

    async def _tokenize(
        self,
        session: AsyncSession,
        card: CardDetails,
        billing: dict[str, Any] | None = None,
        meta: dict[str, str] | None = None,
    ) -> PaymentMethodRow:
        row = self._tokenized(card, billing, meta)
        await PaymentMethodRepository(session).add(row)
        return row

    async def create(self, session: AsyncSession, params: dict[str, Any]) -> dict[str, Any]:
        card = params.get("card")
        if card is None:
            raise ParameterMissing("Missing required param: card.", param="card")
        details = CardDetails(
            number=card["number"].replace(" ", ""),
            exp_month=card["exp_month"],
            exp_year=card["exp_year"],
            cvc=card.get("cvc"),
        )
        row = await self._tokenize(
            session, details, params.get("billing_details"), params.get("metadata")
        )
        return payment_method_object(row)

    async def resolve(
        self, session: AsyncSession, caller: Caller, payment_method_id: str
    ) -> PaymentMethodRow:
        """The payment method ``payment_method_id`` names; a Stripe test id (``pm_card_visa``)
        makes a new one from its test card, as Stripe's test mode does."""
        test_number = TEST_PAYMENT_METHODS.get(payment_method_id)
        if test_number is not None:
            year = utcnow().year + 3
            return await self._tokenize(session, CardDetails(test_number, 12, year, None))
        row = await PaymentMethodRepository(session).get(caller, payment_method_id)
        if row is None:
            raise ResourceMissing(
                f"No such PaymentMethod: '{payment_method_id}'", param="payment_method"
            )
        return row

    async def for_payment(
        self, reads: SessionSource, caller: Caller, payment_method_id: str
    ) -> tuple[PaymentMethodRow, bool]:
        """What :meth:`resolve` gives (read in ``reads()``), except that a payment method made
        from a test id is not stored yet (the payment inserts it with its own rows, and it is a
        :func:`plain_row`); True when it is such a new one."""
        test_number = TEST_PAYMENT_METHODS.get(payment_method_id)
        if test_number is None:
            return await self.resolve(reads(), caller, payment_method_id), False
        card = CardDetails(test_number, 12, utcnow().year + 3, None)
        return plain_row(PaymentMethodRow, **self._card_values(card)), True

    async def retrieve(
        self, session: AsyncSession, caller: Caller, payment_method_id: str
    ) -> dict[str, Any]:
        return payment_method_object(await self.resolve(session, caller, payment_method_id))

    async def update(
        self, session: AsyncSession, caller: Caller, payment_method_id: str, params: dict[str, Any]
    ) -> dict[str, Any]:
        row = await self.resolve(session, caller, payment_method_id)
        if "billing_details" in params:
            row.billing_details = billing_details(params["billing_details"])
        if "metadata" in params:
            row.metadata_ = merge_metadata(row.metadata_, params["metadata"])
        await session.flush()
        obj = payment_method_object(row)
        await record_event(session, "payment_method.updated", obj)
        return obj

    async def attach(
        self, session: AsyncSession, caller: Caller, payment_method_id: str, customer_id: str
    ) -> dict[str, Any]:
        row = await self.resolve(session, caller, payment_method_id)
        customer = await self.customers.get_row(session, caller, customer_id)
        if customer.deleted:
            raise ResourceMissing(f"No such customer: '{customer_id}'", param="customer")
        if row.customer_id is not None and row.customer_id != customer.id:
            raise InvalidRequest(
                "The payment method you provided has already been attached to a customer.",
                code="payment_method_unexpected_state",
            )
        row.customer_id = customer.id
        await session.flush()
        obj = payment_method_object(row)
        await record_event(session, "payment_method.attached", obj)
        return obj

    async def detach(
        self, session: AsyncSession, caller: Caller, payment_method_id: str
    ) -> dict[str, Any]:
        row = await self.resolve(session, caller, payment_method_id)
        if row.customer_id is None:
            raise InvalidRequest(
                "The payment method you provided is not attached to a customer so detachment "
                "is impossible.",
                code="payment_method_unexpected_state",
            )
        row.customer_id = None
        await session.flush()
        obj = payment_method_object(row)
        await record_event(session, "payment_method.detached", obj)
        return obj

    async def list(
        self, session: AsyncSession, caller: Caller, params: dict[str, Any]
    ) -> dict[str, Any]:
        page = ListPage.of(params)
        repository = PaymentMethodRepository(session)
        fetched = await repository.page(caller, page, params.get("customer"))
        return page.listed("/v1/payment_methods", fetched, payment_method_object)
