"""The FHIR R4 resource of a payment or a refund in the patient's record.

R4's resource for a payment received is ``PaymentReconciliation`` (PaymentNotice only announces
one to a recipient Organization and must point at one). Who paid is a Patient, which R4's
``paymentIssuer`` (Reference(Organization)) cannot name and R5's can: the patient goes in R5's
element through its cross-version extension. A refund is a PaymentReconciliation of the
returned amount as a negative payment, its detail's ``predecessor`` naming the payment.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from medmesh.payments.currencies import minor_digits

PAYMENT_SYSTEM = "urn:medmesh:payments:payment_intent"
REFUND_SYSTEM = "urn:medmesh:payments:refund"
CHARGE_SYSTEM = "urn:medmesh:payments:charge"
PAYMENT_TYPE = "http://terminology.hl7.org/CodeSystem/payment-type"
#: R5's ``PaymentReconciliation.paymentIssuer`` (Organization | Patient | RelatedPerson) in R4.
PAYMENT_ISSUER = (
    "http://hl7.org/fhir/5.0/StructureDefinition/extension-PaymentReconciliation.paymentIssuer"
)


def fhir_id(stripe_id: str) -> str:
    """The resource id of a payment or refund (``pi_0a1...`` -> ``pi-0a1...``): FHIR ids take
    letters, digits, ``-`` and ``.`` only, and one id per payment makes its record unique."""
    return stripe_id.replace("_", "-")


def money(minor_units: int, currency: str) -> dict[str, Any]:
    """FHIR Money of an amount in minor units (``2500 usd`` -> ``25.0 USD``, ``500 jpy`` -> 500)."""
    digits = minor_digits(currency)
    value: int | float = minor_units if digits == 0 else minor_units / 10**digits
    return {"value": value, "currency": currency.upper()}


def _reconciliation(
    stripe_id: str,
    system: str,
    patient_ref: str,
    amount: dict[str, Any],
    charge_id: str,
    when: datetime,
    detail: dict[str, Any],
    disposition: str,
) -> dict[str, Any]:
    moment = when.astimezone(UTC)
    identifier = {"system": system, "value": stripe_id}
    return {
        "resourceType": "PaymentReconciliation",
        "id": fhir_id(stripe_id),
        "extension": [{"url": PAYMENT_ISSUER, "valueReference": {"reference": patient_ref}}],
        "identifier": [identifier],
        "status": "active",
        "created": moment.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "paymentDate": moment.date().isoformat(),
        "paymentAmount": amount,
        "paymentIdentifier": {"system": CHARGE_SYSTEM, "value": charge_id},
        "outcome": "complete",
        "disposition": disposition,
        "detail": [
            {
                "identifier": identifier,
                "date": moment.date().isoformat(),
                "amount": amount,
                **detail,
            }
        ],
    }


def payment_record(
    intent_id: str,
    charge_id: str,
    amount: int,
    currency: str,
    patient_ref: str,
    when: datetime,
) -> dict[str, Any]:
    """The PaymentReconciliation of a captured card payment."""
    return _reconciliation(
        intent_id,
        PAYMENT_SYSTEM,
        patient_ref,
        money(amount, currency),
        charge_id,
        when,
        {"type": {"coding": [{"system": PAYMENT_TYPE, "code": "payment"}]}},
        "card payment captured",
    )


def refund_record(
    refund_id: str,
    intent_id: str,
    charge_id: str,
    amount: int,
    currency: str,
    patient_ref: str,
    when: datetime,
) -> dict[str, Any]:
    """The PaymentReconciliation of a refund: a negative payment following the payment."""
    return _reconciliation(
        refund_id,
        REFUND_SYSTEM,
        patient_ref,
        money(-amount, currency),
        charge_id,
        when,
        {
            "type": {"coding": [{"system": PAYMENT_TYPE, "code": "adjustment"}]},
            "predecessor": {"system": PAYMENT_SYSTEM, "value": intent_id},
        },
        "card payment refunded",
    )
