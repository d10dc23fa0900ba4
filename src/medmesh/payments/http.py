"""What every ``/v1`` endpoint shares: reading parameters and running a POST idempotently."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from medmesh.payments.components import PaymentsComponents
from medmesh.payments.idempotency.service import Operation
from medmesh.payments.objects import stripe_response
from medmesh.payments.params import string_list
from medmesh.payments.scoping import Caller

#: The OpenAPI text of the ``Idempotency-Key`` header every POST takes.
IDEMPOTENCY_HEADER = {
    "parameters": [
        {
            "name": "Idempotency-Key",
            "in": "header",
            "required": False,
            "schema": {"type": "string", "maxLength": 255},
            "description": "the same key replays the first response for 24 hours",
        }
    ]
}


async def write(
    request: Request,
    caller: Caller,
    components: PaymentsComponents,
    params: dict[str, Any],
    action: str,
    operation: Operation,
) -> Response:
    """Run a POST's ``operation`` under its ``Idempotency-Key`` (see ``IdempotentWrites``),
    its answer expanded as ``expand[]`` asks."""
    paths = string_list("expand", params["expand"]) if "expand" in params else []

    async def expanded(session: AsyncSession) -> dict[str, Any]:
        return await components.expander.apply(session, caller, await operation(session), paths)

    return await components.writes.run(
        caller,
        request.headers.get("idempotency-key"),
        request.method,
        request.url.path,
        params,
        action,
        expanded,
    )


async def read(
    session: AsyncSession,
    caller: Caller,
    components: PaymentsComponents,
    checked: dict[str, Any],
    obj: dict[str, Any],
) -> Response:
    """A GET's answer, expanded as ``expand[]`` asks."""
    paths = checked.get("expand", [])
    return stripe_response(await components.expander.apply(session, caller, obj, paths))
