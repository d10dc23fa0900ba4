"""``/v1/refunds``: create, retrieve, update, list."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from medmesh.payments.components import Components, Reader, Writer
from medmesh.payments.http import IDEMPOTENCY_HEADER, read, write
from medmesh.payments.params import Spec, read_params
from medmesh.payments.refunds.schemas import CREATE, LIST, UPDATE
from medmesh.platform.db import SessionDep

router = APIRouter(prefix="/v1/refunds", tags=["refunds"])
_NOTHING = Spec({})


@router.post("", summary="Create a refund", openapi_extra=IDEMPOTENCY_HEADER)
async def create_refund(request: Request, caller: Writer, components: Components) -> Response:
    """Refunds a succeeded `payment_intent` (or `charge`): what remains of it, or `amount`.
    Refunds of one payment never add up to more than was captured."""
    params = await read_params(request)
    checked = CREATE.parse(params)
    return await write(
        request,
        caller,
        components,
        params,
        "payments.refund.create",
        lambda session: components.refunds.create(session, caller, checked),
    )


@router.get("/{refund_id}", summary="Retrieve a refund")
async def retrieve_refund(
    refund_id: str, request: Request, caller: Reader, session: SessionDep, components: Components
) -> Response:
    """One refund."""
    checked = _NOTHING.parse(await read_params(request))
    return await read(
        session,
        caller,
        components,
        checked,
        await components.refunds.retrieve(session, caller, refund_id),
    )


@router.post("/{refund_id}", summary="Update a refund", openapi_extra=IDEMPOTENCY_HEADER)
async def update_refund(
    refund_id: str, request: Request, caller: Writer, components: Components
) -> Response:
    """Changes a refund's metadata."""
    params = await read_params(request)
    checked = UPDATE.parse(params)
    return await write(
        request,
        caller,
        components,
        params,
        "payments.refund.update",
        lambda session: components.refunds.update(session, caller, refund_id, checked),
    )


@router.get("", summary="List refunds")
async def list_refunds(
    request: Request, caller: Reader, session: SessionDep, components: Components
) -> Response:
    """Refunds, newest first (`payment_intent`, `charge`, `limit`, `starting_after`,
    `ending_before`)."""
    checked = LIST.parse(await read_params(request))
    return await read(
        session,
        caller,
        components,
        checked,
        await components.refunds.list(session, caller, checked),
    )
