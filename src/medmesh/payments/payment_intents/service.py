"""Payment intents through Stripe's states:

``requires_payment_method`` -> (a payment method) ``requires_confirmation`` -> (confirm)
``requires_action`` (3-D Secure) | ``requires_capture`` (manual capture) | ``succeeded``;
a decline goes back to ``requires_payment_method`` with ``last_payment_error``; every state
before ``succeeded`` may be ``canceled``. ``processing`` is not entered: the simulator answers
at once. Each change is one conditional UPDATE (see the repository), so of racing confirms or
captures exactly one happens.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.payments.connectors import Authorization, Connector
from medmesh.payments.currencies import THREE_DECIMAL
from medmesh.payments.customers.service import CustomerService
from medmesh.payments.errors import InvalidRequest, ResourceMissing, UnexpectedState, error_body
from medmesh.payments.events.recording import record_event, record_events, write_events
from medmesh.payments.idempotency.service import Planned
from medmesh.payments.ledger.service import LedgerService
from medmesh.payments.models import PaymentIntentRow, PaymentMethodRow
from medmesh.payments.objects import new_id
from medmesh.payments.paging import ListPage
from medmesh.payments.params import merge_metadata
from medmesh.payments.patient_records.recording import PatientRecords
from medmesh.payments.payment_intents.repository import PaymentIntentRepository
from medmesh.payments.payment_intents.schemas import payment_intent_object
from medmesh.payments.payment_intents.settlement import Settlement, settle, settlement_writes
from medmesh.payments.payment_methods.schemas import payment_method_object
from medmesh.payments.payment_methods.service import PaymentMethodService
from medmesh.payments.rows import inserts, plain_row
from medmesh.payments.scoping import Caller
from medmesh.platform.db import SessionSource, Statement, WriteTransaction, utcnow

CONFIRMABLE = ("requires_payment_method", "requires_confirmation")
CANCELABLE = (
    "requires_payment_method",
    "requires_confirmation",
    "requires_action",
    "requires_capture",
)
UPDATABLE = ("requires_payment_method", "requires_confirmation", "requires_action")


def _unexpected(row: PaymentIntentRow, action: str) -> UnexpectedState:
    return UnexpectedState(
        f"This PaymentIntent's {action} could not be performed because it has a status of "
        f"{row.status}.",
        payment_intent=payment_intent_object(row),
    )


def _missing_payment_method() -> InvalidRequest:
    return InvalidRequest(
        "You cannot confirm this PaymentIntent because it's missing a payment method.",
        code="payment_intent_unexpected_state",
    )


def _check_owner(method: PaymentMethodRow, customer_id: str | None) -> None:
    if method.customer_id is not None and method.customer_id != customer_id:
        raise InvalidRequest(
            "The provided PaymentMethod belongs to another customer.",
            param="payment_method",
            code="parameter_invalid",
        )


def _created_objects(rows: list[PaymentMethodRow]) -> Callable[[], dict[str, dict[str, Any]]]:
    """The objects of the payment methods a payment creates, for ``expand[]`` (made if asked)."""
    return lambda: {row.id: payment_method_object(row) for row in rows}


def _check_amount(amount: int, currency: str) -> None:
    if currency in THREE_DECIMAL and amount % 10:
        raise InvalidRequest(
            f"Amounts in {currency} must be a multiple of 10 (the last digit is zero).",
            param="amount",
            code="parameter_invalid_integer",
        )


class PaymentIntentService:
    def __init__(
        self,
        connector: Connector,
        customers: CustomerService,
        payment_methods: PaymentMethodService,
        ledger: LedgerService,
        records: PatientRecords,
        public_url: str,
    ) -> None:
        self.connector = connector
        self.customers = customers
        self.payment_methods = payment_methods
        self.ledger = ledger
        self.records = records
        self.public_url = public_url

    async def get_row(
        self, session: AsyncSession, caller: Caller, intent_id: str
    ) -> PaymentIntentRow:
        row = await PaymentIntentRepository(session).get(caller, intent_id)
        if row is None:
            raise ResourceMissing(f"No such payment_intent: '{intent_id}'", param="intent")
        return row

    async def _customer_id(self, session: AsyncSession, caller: Caller, customer_id: str) -> str:
        customer = await self.customers.get_row(session, caller, customer_id)
        if customer.deleted:
            raise ResourceMissing(f"No such customer: '{customer_id}'", param="customer")
        return customer.id

    async def _payment_method_id(
        self, session: AsyncSession, caller: Caller, pm_id: str, customer_id: str | None
    ) -> str:
        method = await self.payment_methods.resolve(session, caller, pm_id)
        _check_owner(method, customer_id)
        return method.id

    async def create(self, reads: SessionSource, caller: Caller, params: dict[str, Any]) -> Planned:
        """A new intent, worked out in memory (its customer and payment method read in
        ``reads()``) and written once, in its final state, by the plan's writes."""
        amount, currency = params["amount"], params["currency"]
        _check_amount(amount, currency)
        types = params.get("payment_method_types", ["card"])
        if types != ["card"]:
            raise InvalidRequest(
                "payment_method_types may only be [card]",
                param="payment_method_types",
            )
        customer_id = None
        if params.get("customer"):
            customer_id = await self._customer_id(reads(), caller, params["customer"])
        elif caller.patient_ref is not None:
            raise InvalidRequest("a patient-bound token must name its customer", param="customer")
        method, new_rows = None, []
        if params.get("payment_method"):
            method, fresh = await self.payment_methods.for_payment(
                reads, caller, params["payment_method"]
            )
            _check_owner(method, customer_id)
            if fresh:
                new_rows.append(method)
        intent_id = new_id("pi")
        row = plain_row(
            PaymentIntentRow,
            id=intent_id,
            amount=amount,
            currency=currency,
            status="requires_confirmation" if method else "requires_payment_method",
            capture_method=params.get("capture_method", "automatic"),
            confirmation_method=params.get("confirmation_method", "automatic"),
            customer_id=customer_id,
            payment_method_id=method.id if method else None,
            payment_method_types=["card"],
            description=params.get("description"),
            receipt_email=params.get("receipt_email"),
            metadata_={k: v for k, v in (params.get("metadata") or {}).items() if v != ""},
            amount_capturable=0,
            amount_received=0,
            amount_refunded=0,
            client_secret=f"{intent_id}_secret_{secrets.token_urlsafe(18)}",
            created=utcnow(),
        )
        created = _created_objects(new_rows)
        opened = ("payment_intent.created", payment_intent_object(row))
        if not params.get("confirm"):
            statements = inserts([*new_rows, row])

            async def write_new(tx: WriteTransaction) -> None:
                await tx.execute_all(statements)
                await write_events(tx, [opened])

            return Planned(opened[1], write_new, created=created)
        if method is None:
            raise _missing_payment_method()
        # A new intent is confirmed before it is stored (no other request knows its id): the
        # processor answers first, then the intent goes in once, in its final state.
        answer = await self.connector.authorize(method.processor_token, amount, currency)
        settled = await settle(self.connector, self.ledger, self.public_url, row, method, answer)
        row.__dict__.update(settled.values)
        writes = settlement_writes(settled, *new_rows, row)
        obj = payment_intent_object(row)
        captured = settled.captured

        async def write_settled(tx: WriteTransaction) -> None:
            await tx.execute_all(writes)
            await write_events(tx, [opened, (settled.event, obj)])
            if captured is not None:
                await self.records.payment_succeeded_in(
                    tx,
                    intent_id=intent_id,
                    charge_id=captured.id,
                    amount=amount,
                    currency=currency,
                    customer_id=customer_id,
                    when=captured.created,
                )

        if settled.error is not None:
            settled.error.payment_intent = obj
            return Planned(error_body(settled.error), write_settled, settled.error.status)
        return Planned(obj, write_settled, created=created)

    async def retrieve(
        self, session: AsyncSession, caller: Caller, intent_id: str
    ) -> dict[str, Any]:
        return payment_intent_object(await self.get_row(session, caller, intent_id))

    async def update(
        self, session: AsyncSession, caller: Caller, intent_id: str, params: dict[str, Any]
    ) -> dict[str, Any]:
        row = await self.get_row(session, caller, intent_id)
        money = {"amount", "currency", "customer", "payment_method", "capture_method"}
        if money & params.keys() and row.status not in UPDATABLE:
            raise _unexpected(row, "update")
        values: dict[str, Any] = {}
        for name in ("amount", "currency", "capture_method", "description", "receipt_email"):
            if name in params:
                values[name] = params[name]
        _check_amount(values.get("amount", row.amount), values.get("currency", row.currency))
        if "metadata" in params:
            values["metadata_"] = merge_metadata(row.metadata_, params["metadata"])
        if "customer" in params:
            values["customer_id"] = await self._customer_id(session, caller, params["customer"])
        if "payment_method" in params:
            customer_id = values.get("customer_id", row.customer_id)
            values["payment_method_id"] = await self._payment_method_id(
                session, caller, params["payment_method"], customer_id
            )
            values["status"] = "requires_confirmation"
        if "payment_method_types" in params and params["payment_method_types"] != ["card"]:
            raise InvalidRequest(
                "payment_method_types may only be [card]", param="payment_method_types"
            )
        states = UPDATABLE if money & params.keys() else (row.status,)
        repository = PaymentIntentRepository(session)
        if values and not await repository.transition(intent_id, states, values):
            raise _unexpected(await self.get_row(session, caller, intent_id), "update")
        return payment_intent_object(await self.get_row(session, caller, intent_id))

    async def confirm(
        self, session: AsyncSession, caller: Caller, intent_id: str, params: dict[str, Any]
    ) -> dict[str, Any]:
        row = await self.get_row(session, caller, intent_id)
        if row.status not in CONFIRMABLE:
            raise _unexpected(row, "confirm")
        pm_id = row.payment_method_id
        if params.get("payment_method"):
            pm_id = await self._payment_method_id(
                session, caller, params["payment_method"], row.customer_id
            )
        if pm_id is None:
            raise _missing_payment_method()
        repository = PaymentIntentRepository(session)
        # Claim the confirmation: of racing confirms only one leaves a confirmable state.
        claimed = await repository.transition(
            intent_id,
            CONFIRMABLE,
            {
                "status": "processing",
                "payment_method_id": pm_id,
                "receipt_email": params.get("receipt_email", row.receipt_email),
                "last_payment_error": None,
            },
        )
        if not claimed:
            raise _unexpected(await self.get_row(session, caller, intent_id), "confirm")
        method = await self.payment_methods.resolve(session, caller, pm_id)
        answer = await self.connector.authorize(method.processor_token, row.amount, row.currency)
        return await self._settle(session, caller, intent_id, answer)

    async def _settle(
        self, session: AsyncSession, caller: Caller, intent_id: str, answer: Authorization
    ) -> dict[str, Any]:
        """Record the processor's answer to the intent now ``processing``."""
        row = await self.get_row(session, caller, intent_id)
        method = None
        if row.payment_method_id is not None:
            method = await self.payment_methods.resolve(session, caller, row.payment_method_id)
        settled = await settle(self.connector, self.ledger, self.public_url, row, method, answer)
        await PaymentIntentRepository(session).transition(
            intent_id, ("processing", "requires_action"), settled.values
        )
        obj = payment_intent_object(await self.get_row(session, caller, intent_id))
        return await self._settled(session, row, obj, settled, [], settlement_writes(settled))

    async def _settled(
        self,
        session: AsyncSession,
        row: PaymentIntentRow,
        obj: dict[str, Any],
        settled: Settlement,
        events: list[tuple[str, dict[str, Any]]],
        writes: list[Statement],
    ) -> dict[str, Any]:
        """The settlement's ``writes`` with the events in one trip, and the patient's record
        of a settled intent (``obj`` as it is now)."""
        await record_events(session, [*events, (settled.event, obj)], writes)
        if settled.captured is not None:
            await self.records.payment_succeeded(
                session,
                intent_id=row.id,
                charge_id=settled.captured.id,
                amount=row.amount,
                currency=row.currency,
                customer_id=row.customer_id,
                when=settled.captured.created,
            )
        if settled.error is not None:
            settled.error.payment_intent = obj
            raise settled.error
        return obj

    async def authenticate(
        self, session: AsyncSession, caller: Caller, intent_id: str, params: dict[str, Any]
    ) -> dict[str, Any]:
        """The cardholder's 3-D Secure step (``next_action``'s URL): ``complete`` authorizes
        the payment, ``fail`` returns the intent to ``requires_payment_method``."""
        row = await PaymentIntentRepository(session).get_unscoped(intent_id)
        given = params["client_secret"].encode()  # compare_digest takes only ASCII str
        if row is None or not secrets.compare_digest(row.client_secret.encode(), given):
            raise ResourceMissing(f"No such payment_intent: '{intent_id}'", param="intent")
        if row.status != "requires_action":
            raise _unexpected(row, "authentication")
        unscoped = Caller(caller.origin, unscoped=True)
        if params["outcome"] == "fail":
            answer = Authorization(
                "declined",
                code="payment_intent_authentication_failure",
                message="The provided PaymentMethod has failed authentication.",
            )
            return await self._settle(session, unscoped, intent_id, answer)
        method = await self.payment_methods.resolve(session, unscoped, str(row.payment_method_id))
        answer = await self.connector.authorize(
            method.processor_token, row.amount, row.currency, authenticated=True
        )
        return await self._settle(session, unscoped, intent_id, answer)

    async def capture(
        self, session: AsyncSession, caller: Caller, intent_id: str, params: dict[str, Any]
    ) -> dict[str, Any]:
        row = await self.get_row(session, caller, intent_id)
        if row.status != "requires_capture":
            raise _unexpected(row, "capture")
        amount = params.get("amount_to_capture", row.amount_capturable)
        if amount > row.amount_capturable:
            raise InvalidRequest(
                "The amount to capture must be at most the amount capturable.",
                param="amount_to_capture",
                code="amount_too_large",
            )
        values: dict[str, Any] = {
            "status": "succeeded",
            "amount_received": amount,
            "amount_capturable": 0,
        }
        if "metadata" in params:
            values["metadata_"] = merge_metadata(row.metadata_, params["metadata"])
        repository = PaymentIntentRepository(session)
        if not await repository.transition(intent_id, ("requires_capture",), values):
            raise _unexpected(await self.get_row(session, caller, intent_id), "capture")
        charge = await repository.charge(str(row.latest_charge))
        fee = 0
        if charge is not None:
            fee = await self.connector.capture(charge.processor_reference, amount, row.currency)
            charge.amount_captured, charge.fee = amount, fee
        await self.ledger.capture(session, amount, fee, row.currency, intent_id, row.customer_id)
        await self.records.payment_succeeded(
            session,
            intent_id=intent_id,
            charge_id=str(row.latest_charge),
            amount=amount,
            currency=row.currency,
            customer_id=row.customer_id,
            when=utcnow(),
        )
        obj = payment_intent_object(await self.get_row(session, caller, intent_id))
        await record_event(session, "payment_intent.succeeded", obj)
        return obj

    async def cancel(
        self, session: AsyncSession, caller: Caller, intent_id: str, params: dict[str, Any]
    ) -> dict[str, Any]:
        row = await self.get_row(session, caller, intent_id)
        if row.status not in CANCELABLE:
            raise _unexpected(row, "cancel")
        values = {
            "status": "canceled",
            "canceled_at": utcnow(),
            "cancellation_reason": params.get("cancellation_reason"),
            "amount_capturable": 0,
            "next_action": None,
        }
        if not await PaymentIntentRepository(session).transition(intent_id, CANCELABLE, values):
            raise _unexpected(await self.get_row(session, caller, intent_id), "cancel")
        obj = payment_intent_object(await self.get_row(session, caller, intent_id))
        await record_event(session, "payment_intent.canceled", obj)
        return obj

    async def list(
        self, session: AsyncSession, caller: Caller, params: dict[str, Any]
    ) -> dict[str, Any]:
        page = ListPage.of(params)
        fetched = await PaymentIntentRepository(session).page(caller, page, params.get("customer"))
        return page.listed("/v1/payment_intents", fetched, payment_intent_object)
