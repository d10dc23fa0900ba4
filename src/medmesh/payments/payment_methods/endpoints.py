"""``/v1/payment_methods``: create (type card), retrieve, update, attach, detach, list."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from medmesh.payments.http import Posting, Reading, write_operation
from medmesh.payments.params import Spec
from medmesh.payments.payment_methods.schemas import ATTACH, CREATE, DETACH, LIST, UPDATE

router = APIRouter(prefix="/v1/payment_methods", tags=["payment methods"])
_NOTHING = Spec({})


@router.post("", summary="Create a card payment method", openapi_extra=write_operation(CREATE))
async def create_payment_method(call: Posting) -> Response:
    """Tokenizes `card[number]`, `card[exp_month]`, `card[exp_year]`, `card[cvc]` at once: the
    number and CVC are never stored, logged or returned; brand, last4, expiry and a keyed
    fingerprint are kept. A number that fails the Luhn check is a 402 `incorrect_number`."""
    return await call.write(
        CREATE,
        "payments.payment_method.create",
        lambda session, checked: call.services.payment_methods.create(session, checked),
    )


@router.get("/{payment_method_id}", summary="Retrieve a payment method")
async def retrieve_payment_method(payment_method_id: str, call: Reading) -> Response:
    """One payment method."""
    return await call.read(
        _NOTHING,
        lambda _: call.services.payment_methods.retrieve(
            call.session, call.caller, payment_method_id
        ),
    )


@router.post(
    "/{payment_method_id}", summary="Update a payment method", openapi_extra=write_operation(UPDATE)
)
async def update_payment_method(payment_method_id: str, call: Posting) -> Response:
    """Changes `billing_details` or `metadata`."""
    return await call.write(
        UPDATE,
        "payments.payment_method.update",
        lambda session, checked: call.services.payment_methods.update(
            session, call.caller, payment_method_id, checked
        ),
    )


@router.post(
    "/{payment_method_id}/attach",
    summary="Attach a payment method to a customer",
    openapi_extra=write_operation(ATTACH),
)
async def attach_payment_method(payment_method_id: str, call: Posting) -> Response:
    """Attaches the payment method to `customer`."""
    return await call.write(
        ATTACH,
        "payments.payment_method.attach",
        lambda session, checked: call.services.payment_methods.attach(
            session, call.caller, payment_method_id, checked["customer"]
        ),
    )


@router.post(
    "/{payment_method_id}/detach",
    summary="Detach a payment method from its customer",
    openapi_extra=write_operation(DETACH),
)
async def detach_payment_method(payment_method_id: str, call: Posting) -> Response:
    """Detaches the payment method from its customer."""
    return await call.write(
        DETACH,
        "payments.payment_method.detach",
        lambda session, _: call.services.payment_methods.detach(
            session, call.caller, payment_method_id
        ),
    )


@router.get("", summary="List payment methods")
async def list_payment_methods(call: Reading) -> Response:
    """Payment methods, newest first (`customer`, `type`, `limit`, `starting_after`,
    `ending_before`)."""
    return await call.read(
        LIST, lambda checked: call.services.payment_methods.list(call.session, call.caller, checked)
    )
