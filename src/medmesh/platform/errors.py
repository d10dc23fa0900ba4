"""One error base class for every expected failure, and its renderers.

Domain code raises a :class:`MedmeshError` subclass; the app factory installs one
handler that picks the renderer of the API style that owns the request path
(problem+json by default, OAuth error JSON under ``/oauth``, OperationOutcome
under ``/fhir``, the Stripe error object for payments). An expected failure is a
4xx with a clear message, never a 500 with a stack trace.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response


class MedmeshError(Exception):
    """An expected failure with an HTTP status and a machine-readable code."""

    status: int = 400
    code: str = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.headers: dict[str, str] = dict(headers or {})
        self.extra: dict[str, Any] = dict(extra or {})

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status}, code={self.code!r}, message={self.message!r})"


class BadRequest(MedmeshError):
    status, code = 400, "bad_request"


class Unauthorized(MedmeshError):
    status, code = 401, "unauthorized"


class Forbidden(MedmeshError):
    status, code = 403, "forbidden"


class NotFound(MedmeshError):
    status, code = 404, "not_found"


class Conflict(MedmeshError):
    status, code = 409, "conflict"


class Gone(MedmeshError):
    status, code = 410, "gone"


class PreconditionFailed(MedmeshError):
    status, code = 412, "precondition_failed"


class PayloadTooLarge(MedmeshError):
    status, code = 413, "payload_too_large"


class UnsupportedMediaType(MedmeshError):
    status, code = 415, "unsupported_media_type"


class Unprocessable(MedmeshError):
    status, code = 422, "unprocessable"


class TooManyRequests(MedmeshError):
    status, code = 429, "rate_limited"


class ServiceUnavailable(MedmeshError):
    status, code = 503, "unavailable"


ErrorRenderer = Callable[[Request, MedmeshError], Response]

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    409: "Conflict",
    410: "Gone",
    412: "Precondition Failed",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def render_problem(request: Request, error: MedmeshError) -> Response:
    """RFC 9457 problem details, the default error format."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": _TITLES.get(error.status, "Error"),
        "status": error.status,
        "code": error.code,
        "detail": error.message,
    }
    body.update(error.extra)
    return Response(
        orjson.dumps(body),
        status_code=error.status,
        headers=error.headers,
        media_type="application/problem+json",
    )


def render_oauth_error(request: Request, error: MedmeshError) -> Response:
    """RFC 6749 section 5.2 error JSON."""
    body: dict[str, Any] = {"error": error.code, "error_description": error.message}
    headers = {"Cache-Control": "no-store", "Pragma": "no-cache", **error.headers}
    return Response(
        orjson.dumps(body), status_code=error.status, headers=headers, media_type="application/json"
    )
