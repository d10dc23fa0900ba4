"""``/v1/payment_methods``: create (type card), retrieve, update, attach, detach, list."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from medmesh.payments.components import Components, Reader, Writer
from medmesh.payments.http import IDEMPOTENCY_HEADER, read, write
from medmesh.payments.params import Spec, read_params
from medmesh.payments.payment_methods.schemas import ATTACH, CREATE, DETACH, LIST, UPDATE
from medmesh.platform.db import SessionDep

router = APIRouter(prefix="/v1/payment_methods", tags=["payment methods"])
_NOTHING = Spec({})


@router.post("", summary="Create a card payment method", openapi_extra=IDEMPOTENCY_HEADER)
async def create_payment_method(
    request: Request, caller: Writer, components: Components
) -> Response:
    """Tokenizes `card[number]`, `card[exp_month]`, `card[exp_year]`, `card[cvc]` at once: the
    number and CVC are never stored, logged or returned; brand, last4, expiry and a keyed
    fingerprint are kept. A number that fails the Luhn check is a 402 `incorrect_number`."""
    params = await read_params(request)
    checked = CREATE.parse(params)
    return await write(
        request,
        caller,
        components,
        params,
        "payments.payment_method.create",
        lambda session: components.payment_methods.create(session, checked),
    )


@router.get("/{payment_method_id}", summary="Retrieve a payment method")
async def retrieve_payment_method(
    payment_method_id: str,
    request: Request,
    caller: Reader,
    session: SessionDep,
    components: Components,
) -> Response:
    """One payment method."""
    checked = _NOTHING.parse(await read_params(request))
    found = await components.payment_methods.retrieve(session, caller, payment_method_id)
    return await read(session, caller, components, checked, found)


@router.post(
    "/{payment_method_id}", summary="Update a payment method", openapi_extra=IDEMPOTENCY_HEADER
)
async def update_payment_method(
    payment_method_id: str, request: Request, caller: Writer, components: Components
) -> Response:
    """Changes `billing_details` or `metadata`."""
    params = await read_params(request)
    checked = UPDATE.parse(params)
    return await write(
        request,
        caller,
        components,
        params,
        "payments.payment_method.update",
        lambda session: components.payment_methods.update(
            session, caller, payment_method_id, checked
        ),
    )


@router.post(
    "/{payment_method_id}/attach",
    summary="Attach a payment method to a customer",
    openapi_extra=IDEMPOTENCY_HEADER,
)
async def attach_payment_method(
    payment_method_id: str, request: Request, caller: Writer, components: Components
) -> Response:
    """Attaches the payment method to `customer`."""
    params = await read_params(request)
    checked = ATTACH.parse(params)
    return await write(
        request,
        caller,
        components,
        params,
        "payments.payment_method.attach",
        lambda session: components.payment_methods.attach(
            session, caller, payment_method_id, checked["customer"]
        ),
    )


@router.post(
    "/{payment_method_id}/detach",
    summary="Detach a payment method from its customer",
    openapi_extra=IDEMPOTENCY_HEADER,
)
async def detach_payment_method(
    payment_method_id: str, request: Request, caller: Writer, components: Components
) -> Response:
    """Detaches the payment method from its customer."""
    params = await read_params(request)
    DETACH.parse(params)
    return await write(
        request,
        caller,
        components,
        params,
        "payments.payment_method.detach",
        lambda session: components.payment_methods.detach(session, caller, payment_method_id),
    )


@router.get("", summary="List payment methods")
async def list_payment_methods(
    request: Request, caller: Reader, session: SessionDep, components: Components
) -> Response:
    """Payment methods, newest first (`customer`, `type`, `limit`, `starting_after`,
    `ending_before`)."""
    checked = LIST.parse(await read_params(request))
    return await read(
        session,
        caller,
        components,
        checked,
        await components.payment_methods.list(session, caller, checked),
    )
