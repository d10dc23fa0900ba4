"""Stripe's error objects: ``{"error": {type, code, decline_code, message, param}}`` with
Stripe's status codes (400 invalid request, 401 authentication, 402 card, 403 permission,
404 missing resource, 409 idempotency key in use, 429 rate limit, 500 api error)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from medmesh.platform.errors import MedmeshError

INVALID_REQUEST = "invalid_request_error"
CARD_ERROR = "card_error"
IDEMPOTENCY_ERROR = "idempotency_error"


class StripeError(MedmeshError):
    """An expected failure rendered as a Stripe error object."""

    status = 400
    code = "invalid_request"
    error_type = INVALID_REQUEST

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        status: int | None = None,
        decline_code: str | None = None,
        error_type: str | None = None,
        payment_intent: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, code=code, status=status)
        self.param = param
        self.decline_code = decline_code
        if error_type is not None:
            self.error_type = error_type
        #: The intent a card error happened on (Stripe returns it inside the error).
        self.payment_intent = payment_intent

    def body(self) -> dict[str, Any]:
        """The ``error`` object (the keys Stripe omits when they have no value are omitted)."""
        error: dict[str, Any] = {"type": self.error_type, "message": self.message}
        if self.code:
            error["code"] = self.code
        if self.param:
            error["param"] = self.param
        if self.decline_code:
            error["decline_code"] = self.decline_code
        if self.payment_intent is not None:
            error["payment_intent"] = self.payment_intent
        return error


class InvalidRequest(StripeError):
    status, code = 400, "parameter_invalid"


class ParameterUnknown(StripeError):
    status, code = 400, "parameter_unknown"


class ParameterMissing(StripeError):
    status, code = 400, "parameter_missing"


class ResourceMissing(StripeError):
    status, code = 404, "resource_missing"


class UnexpectedState(StripeError):
    status, code = 400, "payment_intent_unexpected_state"


class CardError(StripeError):
    """The processor refused the card (402)."""

    status, code, error_type = 402, "card_declined", CARD_ERROR


class IdempotencyMismatch(StripeError):
    status, code, error_type = 400, "idempotency_key_reused", IDEMPOTENCY_ERROR


class IdempotencyKeyInUse(StripeError):
    status, code = 409, "idempotency_key_in_use"


def error_body(error: MedmeshError) -> dict[str, Any]:
    """The Stripe error object of any platform error: Stripe's four types, so a token refused
    (401), a missing scope (403) or a rate limit (429) is an ``invalid_request_error`` with the
    platform's code, and anything of 500 or above an ``api_error``."""
    if isinstance(error, StripeError):
        return {"error": error.body()}
    kind = "api_error" if error.status >= 500 else INVALID_REQUEST
    code = "resource_missing" if error.status == 404 else error.code
    return {"error": {"type": kind, "code": code, "message": error.message}}


def render_stripe_error(request: Request, error: MedmeshError) -> Response:
    """The error renderer of ``/v1``."""
    return Response(
        orjson.dumps(error_body(error)),
        status_code=error.status,
        headers=error.headers,
        media_type="application/json",
    )
