"""``/v1/payment_intents``: create, retrieve, update, confirm, capture, cancel, list, and the
3-D Secure step of ``next_action``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from medmesh.payments.components import WRITE_SECURITY, Components
from medmesh.payments.http import Posting, Reading, WriteCall, write_operation
from medmesh.payments.params import read_params
from medmesh.payments.payment_intents.schemas import (
    CANCEL,
    CAPTURE,
    CONFIRM,
    CREATE,
    LIST,
    RETRIEVE,
    THREE_D_SECURE,
    UPDATE,
)
from medmesh.payments.request_bodies import form_body
from medmesh.payments.scoping import Caller
from medmesh.platform.origin import RequestOrigin
from medmesh.platform.web import direct

router = APIRouter(prefix="/v1/payment_intents", tags=["payment intents"])


@router.post(
    "",
    summary="Create a payment intent",
    openapi_extra=write_operation(CREATE, security=WRITE_SECURITY),
)
@direct
async def create_payment_intent(request: Request) -> Response:
    """Creates an intent to collect `amount` (minor units of `currency`; a zero-decimal
    currency such as `jpy` counts whole units). With `payment_method` it waits for
    confirmation; `confirm=true` confirms it at once."""
    call = await WriteCall.of(request)
    return await call.write_planned(
        CREATE,
        "payments.payment_intent.create",
        lambda reads, checked: call.services.payment_intents.create(reads, call.caller, checked),
    )


@router.get("/{intent_id}", summary="Retrieve a payment intent")
async def retrieve_payment_intent(intent_id: str, call: Reading) -> Response:
    """One payment intent."""
    return await call.read(
        RETRIEVE,
        lambda _: call.services.payment_intents.retrieve(call.session, call.caller, intent_id),
    )


@router.post(
    "/{intent_id}", summary="Update a payment intent", openapi_extra=write_operation(UPDATE)
)
async def update_payment_intent(intent_id: str, call: Posting) -> Response:
    """Changes amount, currency, customer, payment method or capture method before the payment
    is confirmed; description, receipt email and metadata at any time."""
    return await call.write(
        UPDATE,
        "payments.payment_intent.update",
        lambda session, checked: call.services.payment_intents.update(
            session, call.caller, intent_id, checked
        ),
    )


@router.post(
    "/{intent_id}/confirm",
    summary="Confirm a payment intent",
    openapi_extra=write_operation(CONFIRM),
)
async def confirm_payment_intent(intent_id: str, call: Posting) -> Response:
    """Sends the payment to the processor: `succeeded` (automatic capture), `requires_capture`
    (manual), `requires_action` (3-D Secure; follow `next_action`), or a 402 card error that
    leaves the intent in `requires_payment_method` with `last_payment_error`."""
    return await call.write(
        CONFIRM,
        "payments.payment_intent.confirm",
        lambda session, checked: call.services.payment_intents.confirm(
            session, call.caller, intent_id, checked
        ),
    )


@router.post(
    "/{intent_id}/capture",
    summary="Capture a payment intent",
    openapi_extra=write_operation(CAPTURE),
)
async def capture_payment_intent(intent_id: str, call: Posting) -> Response:
    """Captures an intent in `requires_capture`: all of it, or `amount_to_capture` (the rest
    is released)."""
    return await call.write(
        CAPTURE,
        "payments.payment_intent.capture",
        lambda session, checked: call.services.payment_intents.capture(
            session, call.caller, intent_id, checked
        ),
    )


@router.post(
    "/{intent_id}/cancel", summary="Cancel a payment intent", openapi_extra=write_operation(CANCEL)
)
async def cancel_payment_intent(intent_id: str, call: Posting) -> Response:
    """Cancels an intent that has not succeeded (an authorization is released)."""
    return await call.write(
        CANCEL,
        "payments.payment_intent.cancel",
        lambda session, checked: call.services.payment_intents.cancel(
            session, call.caller, intent_id, checked
        ),
    )


@router.post(
    "/{intent_id}/three_d_secure",
    summary="Complete or fail 3-D Secure",
    openapi_extra=form_body(THREE_D_SECURE),
)
async def three_d_secure(intent_id: str, request: Request, components: Components) -> Response:
    """The cardholder's step of `next_action.redirect_to_url`: `outcome=complete` authorizes
    the payment, `outcome=fail` fails it. Authorized by the intent's `client_secret`, not a
    token (the simulator's stand-in for the issuer's page)."""
    params = await read_params(request)
    checked = THREE_D_SECURE.parse(params)
    caller = Caller(RequestOrigin.of(request), unscoped=True)
    return await components.writes.run(
        caller,
        None,
        request.method,
        request.url.path,
        params,
        "payments.payment_intent.authenticate",
        lambda session: components.payment_intents.authenticate(
            session, caller, intent_id, checked
        ),
    )


@router.get("", summary="List payment intents")
async def list_payment_intents(call: Reading) -> Response:
    """Payment intents, newest first (`customer`, `limit`, `starting_after`, `ending_before`)."""
    return await call.read(
        LIST, lambda checked: call.services.payment_intents.list(call.session, call.caller, checked)
    )
