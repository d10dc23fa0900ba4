"""Succeeded payments and refunds of a customer tied to a FHIR Patient (``metadata[patient]``)
are queued for phi-service through ``platform.outbox``, in the transaction of the change: a
record is sent exactly when its payment or refund is committed, and a crash in between cannot
lose it. Each record has one resource id (from the payment's or refund's id) and one outbox
message (its ``dedup_key``), and delivery writes it only where phi has none (see
:mod:`.delivery`): a retried delivery stores nothing twice."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.payments.customers.repository import CustomerRepository, patient_in
from medmesh.payments.patient_records.resources import fhir_id, payment_record, refund_record
from medmesh.platform.db import WriteTransaction
from medmesh.platform.outbox import QueuedMessage, enqueue, enqueue_all

TOPIC = "payments.phi"


class PatientRecords:
    """Queues phi records (``enabled`` when the gateway has a phi-service to write to)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    async def _patient_of(self, session: AsyncSession, customer_id: str | None) -> str | None:
        if not self.enabled or customer_id is None:
            return None
        return await CustomerRepository(session).patient_of(customer_id)

    async def payment_succeeded(
        self,
        session: AsyncSession,
        *,
        intent_id: str,
        charge_id: str,
        amount: int,
        currency: str,
        customer_id: str | None,
        when: datetime,
    ) -> None:
        """Queue the record of a captured payment (when its customer names a patient)."""
        patient = await self._patient_of(session, customer_id)
        if patient is not None:
            resource = payment_record(intent_id, charge_id, amount, currency, patient, when)
            await _queue(session, intent_id, resource)

    async def payment_succeeded_in(
        self,
        tx: WriteTransaction,
        *,
        intent_id: str,
        charge_id: str,
        amount: int,
        currency: str,
        customer_id: str | None,
        when: datetime,
    ) -> None:
        """:meth:`payment_succeeded` in a write transaction."""
        if not self.enabled or customer_id is None:
            return
        patient = await patient_in(tx, customer_id)
        if patient is not None:
            resource = payment_record(intent_id, charge_id, amount, currency, patient, when)
            await enqueue_all(tx, [_message(intent_id, resource)])

    async def refund_succeeded(
        self,
        session: AsyncSession,
        *,
        refund_id: str,
        intent_id: str,
        charge_id: str,
        amount: int,
        currency: str,
        customer_id: str | None,
        when: datetime,
    ) -> None:
        """Queue the record of a refund (when the payment's customer names a patient)."""
        patient = await self._patient_of(session, customer_id)
        if patient is not None:
            resource = refund_record(
                refund_id, intent_id, charge_id, amount, currency, patient, when
            )
            await _queue(session, refund_id, resource)


def _message(stripe_id: str, resource: dict[str, object]) -> QueuedMessage:
    return QueuedMessage(
        topic=TOPIC,
        destination=f"PaymentReconciliation/{fhir_id(stripe_id)}",
        payload=resource,
        dedup_key=f"phi:{stripe_id}",
    )


async def _queue(session: AsyncSession, stripe_id: str, resource: dict[str, object]) -> None:
    message = _message(stripe_id, resource)
    await enqueue(
        session,
        topic=message.topic,
        destination=message.destination,
        payload=message.payload,
        dedup_key=message.dedup_key,
    )
