"""``/v1/webhook_endpoints``: create, retrieve, update, delete, list."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from medmesh.payments.components import Components, Reader, Writer
from medmesh.payments.http import IDEMPOTENCY_HEADER, read, write
from medmesh.payments.objects import stripe_response
from medmesh.payments.params import Spec, integer, read_params
from medmesh.payments.webhooks.schemas import CREATE, LIST, ROLL, UPDATE
from medmesh.platform.db import SessionDep

router = APIRouter(prefix="/v1/webhook_endpoints", tags=["webhook endpoints"])
_NOTHING = Spec({})
DELIVERIES = Spec({"limit": integer(1, 100)})


@router.post("", summary="Create a webhook endpoint", openapi_extra=IDEMPOTENCY_HEADER)
async def create_webhook_endpoint(
    request: Request, caller: Writer, components: Components
) -> Response:
    """Sends the events of `enabled_events` (`*` for all) to `url`, signed with the `whsec_`
    secret this answer carries (and no later one)."""
    params = await read_params(request)
    checked = CREATE.parse(params)
    return await write(
        request,
        caller,
        components,
        params,
        "payments.webhook_endpoint.create",
        lambda session: components.webhooks.create(session, caller, checked),
    )


@router.get("/{endpoint_id}", summary="Retrieve a webhook endpoint")
async def retrieve_webhook_endpoint(
    endpoint_id: str, request: Request, caller: Reader, session: SessionDep, components: Components
) -> Response:
    """One webhook endpoint (without its secret)."""
    checked = _NOTHING.parse(await read_params(request))
    found = await components.webhooks.retrieve(session, caller, endpoint_id)
    return await read(session, caller, components, checked, found)


@router.post(
    "/{endpoint_id}", summary="Update a webhook endpoint", openapi_extra=IDEMPOTENCY_HEADER
)
async def update_webhook_endpoint(
    endpoint_id: str, request: Request, caller: Writer, components: Components
) -> Response:
    """Changes `url`, `enabled_events`, `description`, `metadata`; `disabled=true` pauses it."""
    params = await read_params(request)
    checked = UPDATE.parse(params)
    return await write(
        request,
        caller,
        components,
        params,
        "payments.webhook_endpoint.update",
        lambda session: components.webhooks.update(session, caller, endpoint_id, checked),
    )


@router.post(
    "/{endpoint_id}/roll_secret",
    summary="Roll a webhook endpoint's secret",
    openapi_extra=IDEMPOTENCY_HEADER,
)
async def roll_webhook_secret(
    endpoint_id: str, request: Request, caller: Writer, components: Components
) -> Response:
    """A new `whsec_` secret, in this answer only. Events carry a `v1` signature for it and,
    for `expires_in` seconds (default 86400; 0 ends the old one now), one for the old secret."""
    params = await read_params(request)
    checked = ROLL.parse(params)
    return await write(
        request,
        caller,
        components,
        params,
        "payments.webhook_endpoint.roll_secret",
        lambda session: components.webhooks.roll_secret(session, caller, endpoint_id, checked),
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
async def delete_webhook_endpoint(
    endpoint_id: str, request: Request, caller: Writer, components: Components
) -> Response:
    """Deletes the endpoint; events not yet delivered to it are dropped."""
    params = await read_params(request)
    _NOTHING.parse(params)
    return await write(
        request,
        caller,
        components,
        params,
        "payments.webhook_endpoint.delete",
        lambda session: components.webhooks.delete(session, caller, endpoint_id),
    )


@router.get("", summary="List webhook endpoints")
async def list_webhook_endpoints(
    request: Request, caller: Reader, session: SessionDep, components: Components
) -> Response:
    """Webhook endpoints, newest first."""
    checked = LIST.parse(await read_params(request))
    found = await components.webhooks.list(session, caller, checked)
    return await read(session, caller, components, checked, found)
