"""payment-gateway tables. Ids are Stripe-style (``cus_``, ``pm_``, ``pi_``, ...) followed by a
time-ordered UUID, so ordering by id is ordering by creation. Amounts are integers of minor
units with a lowercase ISO 4217 currency. No card number or security code has a column."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from medmesh.platform.db import UTCDateTime, new_metadata

ID = 48


class PaymentsBase(DeclarativeBase):
    metadata = new_metadata()


class CustomerRow(PaymentsBase):
    __tablename__ = "customers"
    __table_args__ = (Index("ix_customers_patient_ref", "patient_ref"),)

    id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    email: Mapped[str | None] = mapped_column(String(512), nullable=True)
    name: Mapped[str | None] = mapped_column(String(256), nullable=True)
    phone: Mapped[str | None] = mapped_column(String(64), nullable=True)
    description: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    metadata_: Mapped[dict[str, str]] = mapped_column("metadata", JSON)
    #: ``Patient/<id>`` from ``metadata[patient]``: whose financial record the payments join.
    patient_ref: Mapped[str | None] = mapped_column(String(128), nullable=True)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    created: Mapped[datetime] = mapped_column(UTCDateTime)


class PaymentMethodRow(PaymentsBase):
    __tablename__ = "payment_methods"
    __table_args__ = (Index("ix_payment_methods_customer", "customer_id", "id"),)

    id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    type: Mapped[str] = mapped_column(String(32))
    customer_id: Mapped[str | None] = mapped_column(
        String(ID), ForeignKey("customers.id"), nullable=True
    )
    brand: Mapped[str] = mapped_column(String(32))
    last4: Mapped[str] = mapped_column(String(4))
    exp_month: Mapped[int] = mapped_column(Integer)
    exp_year: Mapped[int] = mapped_column(Integer)
    funding: Mapped[str] = mapped_column(String(16))
    country: Mapped[str | None] = mapped_column(String(2), nullable=True)
    #: Keyed HMAC of the number: the same card gives the same fingerprint, which reveals nothing.
    fingerprint: Mapped[str] = mapped_column(String(64))
    connector: Mapped[str] = mapped_column(String(32))
    processor_token: Mapped[str] = mapped_column(String(255))
    billing_details: Mapped[dict[str, Any]] = mapped_column(JSON)
    metadata_: Mapped[dict[str, str]] = mapped_column("metadata", JSON)
    created: Mapped[datetime] = mapped_column(UTCDateTime)


class PaymentIntentRow(PaymentsBase):
    """``status`` follows Stripe's machine; ``amount_refunded`` is what refunds took back of
    ``amount_received`` (a refund raises it only while it stays at most that)."""

    __tablename__ = "payment_intents"
    __table_args__ = (Index("ix_payment_intents_customer", "customer_id", "id"),)

    id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    amount: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(32))
    capture_method: Mapped[str] = mapped_column(String(32))
    confirmation_method: Mapped[str] = mapped_column(String(16))
    customer_id: Mapped[str | None] = mapped_column(
        String(ID), ForeignKey("customers.id"), nullable=True
    )
    payment_method_id: Mapped[str | None] = mapped_column(
        String(ID), ForeignKey("payment_methods.id"), nullable=True
    )
    payment_method_types: Mapped[list[str]] = mapped_column(JSON)
    description: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    receipt_email: Mapped[str | None] = mapped_column(String(512), nullable=True)
    metadata_: Mapped[dict[str, str]] = mapped_column("metadata", JSON)
    amount_capturable: Mapped[int] = mapped_column(Integer, default=0)
    amount_received: Mapped[int] = mapped_column(Integer, default=0)
    amount_refunded: Mapped[int] = mapped_column(Integer, default=0)
    latest_charge: Mapped[str | None] = mapped_column(String(ID), nullable=True)
    last_payment_error: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    next_action: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    client_secret: Mapped[str] = mapped_column(String(128))
    canceled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    cancellation_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created: Mapped[datetime] = mapped_column(UTCDateTime)


class ChargeRow(PaymentsBase):
    """One authorization at the processor (a payment intent's attempt that it approved)."""

    __tablename__ = "charges"
    __table_args__ = (Index("ix_charges_payment_intent", "payment_intent_id"),)

    id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    payment_intent_id: Mapped[str] = mapped_column(String(ID), ForeignKey("payment_intents.id"))
    payment_method_id: Mapped[str] = mapped_column(String(ID), ForeignKey("payment_methods.id"))
    amount: Mapped[int] = mapped_column(Integer)
    amount_captured: Mapped[int] = mapped_column(Integer, default=0)
    #: The processor's fee for the captured amount (minor units of ``currency``).
    fee: Mapped[int] = mapped_column(Integer, default=0)
    currency: Mapped[str] = mapped_column(String(3))
    processor_reference: Mapped[str] = mapped_column(String(255))
    created: Mapped[datetime] = mapped_column(UTCDateTime)


class RefundRow(PaymentsBase):
    __tablename__ = "refunds"
    __table_args__ = (Index("ix_refunds_payment_intent", "payment_intent_id", "id"),)

    id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    payment_intent_id: Mapped[str] = mapped_column(String(ID), ForeignKey("payment_intents.id"))
    charge_id: Mapped[str] = mapped_column(String(ID), ForeignKey("charges.id"))
    amount: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    metadata_: Mapped[dict[str, str]] = mapped_column("metadata", JSON)
    created: Mapped[datetime] = mapped_column(UTCDateTime)


class IdempotencyKeyRow(PaymentsBase):
    """A caller's ``Idempotency-Key``: claimed (no response yet) while its request runs, then
    holding the response replayed for later requests with the key."""

    __tablename__ = "idempotency_keys"

    owner: Mapped[str] = mapped_column(String(512), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    response_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    response_body: Mapped[str | None] = mapped_column(Text, nullable=True)
    created: Mapped[datetime] = mapped_column(UTCDateTime)


class LedgerEntryRow(PaymentsBase):
    """One side of a double-entry transaction: the entries of a ``transaction_id`` balance
    (debits equal credits, per currency)."""

    __tablename__ = "ledger_entries"
    __table_args__ = (
        Index("ix_ledger_entries_transaction", "transaction_id"),
        Index("ix_ledger_entries_account", "account", "currency"),
        Index("ix_ledger_entries_customer", "customer_id", "id"),
    )

    id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    transaction_id: Mapped[str] = mapped_column(String(ID))
    kind: Mapped[str] = mapped_column(String(16))
    account: Mapped[str] = mapped_column(String(64))
    direction: Mapped[str] = mapped_column(String(6))
    amount: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    payment_intent_id: Mapped[str | None] = mapped_column(String(ID), nullable=True)
    refund_id: Mapped[str | None] = mapped_column(String(ID), nullable=True)
    customer_id: Mapped[str | None] = mapped_column(String(ID), nullable=True)
    created: Mapped[datetime] = mapped_column(UTCDateTime)


class EventRow(PaymentsBase):
    """An event (``payment_intent.succeeded`` ...), written in the transaction of its change."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_type", "type", "id"),)

    id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    type: Mapped[str] = mapped_column(String(64))
    object_id: Mapped[str] = mapped_column(String(ID))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    created: Mapped[datetime] = mapped_column(UTCDateTime)


class WebhookEndpointRow(PaymentsBase):
    """Where events are sent, which ones (``*`` for all), and the secret that signs them."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    url: Mapped[str] = mapped_column(String(2048))
    enabled_events: Mapped[list[str]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    description: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    metadata_: Mapped[dict[str, str]] = mapped_column("metadata", JSON)
    secret: Mapped[str] = mapped_column(String(128))
    #: The secret before the last roll: events are signed with both until it expires.
    previous_secret: Mapped[str | None] = mapped_column(String(128), nullable=True)
    previous_secret_expires: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created: Mapped[datetime] = mapped_column(UTCDateTime)
