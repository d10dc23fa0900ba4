"""``/v1/events``: retrieve, list."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from medmesh.payments.components import Components, Reader
from medmesh.payments.events.schemas import LIST, RETRIEVE
from medmesh.payments.objects import stripe_response
from medmesh.payments.params import read_params
from medmesh.platform.db import SessionDep

router = APIRouter(prefix="/v1/events", tags=["events"])


@router.get("/{event_id}", summary="Retrieve an event")
async def retrieve_event(
    event_id: str, request: Request, caller: Reader, session: SessionDep, components: Components
) -> Response:
    """One event: its `type` (`payment_intent.succeeded` ...) and the object as it was then."""
    RETRIEVE.parse(await read_params(request))
    return stripe_response(await components.events.retrieve(session, caller, event_id))


@router.get("", summary="List events")
async def list_events(
    request: Request, caller: Reader, session: SessionDep, components: Components
) -> Response:
    """Events, newest first (`type`, `limit`, `starting_after`, `ending_before`)."""
    checked = LIST.parse(await read_params(request))
    return stripe_response(await components.events.list(session, caller, checked))
