"""What every ``/v1`` endpoint shares: reading parameters and running a POST idempotently."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from medmesh.payments.components import PaymentsComponents
from medmesh.payments.idempotency.service import Operation
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
    """Run a POST's ``operation`` under its ``Idempotency-Key`` (see ``IdempotentWrites``)."""
    return await components.writes.run(
        caller,
        request.headers.get("idempotency-key"),
        request.method,
        request.url.path,
        params,
        action,
        operation,
    )
