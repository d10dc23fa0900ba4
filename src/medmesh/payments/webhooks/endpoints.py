"""``/v1/webhook_endpoints``: create, retrieve, update, delete, list."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from medmesh.payments.components import Components, Reader
from medmesh.payments.http import Posting, Reading, write_operation
from medmesh.payments.objects import stripe_response
from medmesh.payments.params import Spec, integer, read_params
from medmesh.payments.webhooks.schemas import CREATE, LIST, ROLL, UPDATE
from medmesh.platform.db import SessionDep

router = APIRouter(prefix="/v1/webhook_endpoints", tags=["webhook endpoints"])
_NOTHING = Spec({})
DELIVERIES = Spec({"limit": integer(1, 100)})


@router.post("", summary="Create a webhook endpoint", openapi_extra=write_operation(CREATE))
async def create_webhook_endpoint(call: Posting) -> Response:
    """Sends the events of `enabled_events` (`*` for all) to `url`, signed with the `whsec_`
    secret this answer carries (and no later one)."""
    return await call.write(
        CREATE,
        "payments.webhook_endpoint.create",
        lambda session, checked: call.services.webhooks.create(session, call.caller, checked),
    )


@router.get("/{endpoint_id}", summary="Retrieve a webhook endpoint")
async def retrieve_webhook_endpoint(endpoint_id: str, call: Reading) -> Response:
    """One webhook endpoint (without its secret)."""
    return await call.read(
        _NOTHING, lambda _: call.services.webhooks.retrieve(call.session, call.caller, endpoint_id)
    )


@router.post(
    "/{endpoint_id}", summary="Update a webhook endpoint", openapi_extra=write_operation(UPDATE)
)
async def update_webhook_endpoint(endpoint_id: str, call: Posting) -> Response:
    """Changes `url`, `enabled_events`, `description`, `metadata`; `disabled=true` pauses it."""
    return await call.write(
        UPDATE,
        "payments.webhook_endpoint.update",
        lambda session, checked: call.services.webhooks.update(
            session, call.caller, endpoint_id, checked
        ),
    )


@router.post(
    "/{endpoint_id}/roll_secret",
    summary="Roll a webhook endpoint's secret",
    openapi_extra=write_operation(ROLL),
)
async def roll_webhook_secret(endpoint_id: str, call: Posting) -> Response:
    """A new `whsec_` secret, in this answer only. Events carry a `v1` signature for it and,
    for `expires_in` seconds (default 86400; 0 ends the old one now), one for the old secret."""
    return await call.write(
        ROLL,
        "payments.webhook_endpoint.roll_secret",
        lambda session, checked: call.services.webhooks.roll_secret(
            session, call.caller, endpoint_id, checked
        ),
    )


@router.get("/{endpoint_id}/deliveries", summary="A webhook endpoint's deliveries")
async def webhook_deliveries(
    endpoint_id: str, request: Request, caller: Reader, session: SessionDep, components: Components
) -> Response:
    """Each event sent or to be sent to the endpoint, newest first: `status` (`pending`,
    `delivered`, `failed` once its attempts ran out), `attempts`, `last_error`, `next_attempt`."""
    checked = DELIVERIES.parse(await read_params(request))
    return stripe_response(
        await components.webhooks.deliveries(session, caller, endpoint_id, checked)
    )


@router.delete("/{endpoint_id}", summary="Delete a webhook endpoint")
async def delete_webhook_endpoint(endpoint_id: str, call: Posting) -> Response:
    """Deletes the endpoint; events not yet delivered to it are dropped."""
    return await call.write(
        _NOTHING,
        "payments.webhook_endpoint.delete",
        lambda session, _: call.services.webhooks.delete(session, call.caller, endpoint_id),
    )


@router.get("", summary="List webhook endpoints")
async def list_webhook_endpoints(call: Reading) -> Response:
    """Webhook endpoints, newest first."""
    return await call.read(
        LIST, lambda checked: call.services.webhooks.list(call.session, call.caller, checked)
    )
