"""``/v1/refunds``: create, retrieve, update, list."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from medmesh.payments.http import Posting, Reading, write_operation
from medmesh.payments.params import Spec
from medmesh.payments.refunds.schemas import CREATE, LIST, UPDATE

router = APIRouter(prefix="/v1/refunds", tags=["refunds"])
_NOTHING = Spec({})


@router.post("", summary="Create a refund", openapi_extra=write_operation(CREATE))
async def create_refund(call: Posting) -> Response:
    """Refunds a succeeded `payment_intent` (or `charge`): what remains of it, or `amount`.
    Refunds of one payment never add up to more than was captured."""
    return await call.write(
        CREATE,
        "payments.refund.create",
        lambda session, checked: call.services.refunds.create(session, call.caller, checked),
    )


@router.get("/{refund_id}", summary="Retrieve a refund")
async def retrieve_refund(refund_id: str, call: Reading) -> Response:
    """One refund."""
    return await call.read(
        _NOTHING, lambda _: call.services.refunds.retrieve(call.session, call.caller, refund_id)
    )


@router.post("/{refund_id}", summary="Update a refund", openapi_extra=write_operation(UPDATE))
async def update_refund(refund_id: str, call: Posting) -> Response:
    """Changes a refund's metadata."""
    return await call.write(
        UPDATE,
        "payments.refund.update",
        lambda session, checked: call.services.refunds.update(
            session, call.caller, refund_id, checked
        ),
    )


@router.get("", summary="List refunds")
async def list_refunds(call: Reading) -> Response:
    """Refunds, newest first (`payment_intent`, `charge`, `limit`, `starting_after`,
    `ending_before`)."""
    return await call.read(
        LIST, lambda checked: call.services.refunds.list(call.session, call.caller, checked)
    )
