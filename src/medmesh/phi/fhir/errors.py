"""FHIR errors: every failure under ``/fhir`` is an OperationOutcome with the matching status.

The issue code follows the HTTP status (``not-found`` 404, ``forbidden`` 403,
``conflict`` 409/412, ``deleted`` 410, ``processing`` 422, ...), as medplum and
HAPI do; an error may name a more precise one (``extra={"issue_code": ...}``).
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from medmesh.platform.errors import MedmeshError

FHIR_JSON = "application/fhir+json"

_ISSUE_CODES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    406: "not-supported",
    408: "timeout",
    409: "conflict",
    410: "deleted",
    412: "conflict",
    413: "too-costly",
    415: "not-supported",
    422: "processing",
    429: "throttled",
    503: "transient",
}


def operation_outcome(
    severity: str, code: str, diagnostics: str, expression: list[str] | None = None
) -> dict[str, Any]:
    """An OperationOutcome with one issue."""
    issue: dict[str, Any] = {"severity": severity, "code": code, "diagnostics": diagnostics}
    if expression:
        issue["expression"] = expression
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def render_operation_outcome(request: Request, error: MedmeshError) -> Response:
    """The OperationOutcome of a failure, ``application/fhir+json``."""
    code = str(error.extra.get("issue_code") or _ISSUE_CODES.get(error.status, "exception"))
    expression = error.extra.get("expression")
    body = operation_outcome(
        "error" if error.status < 500 else "fatal",
        code,
        error.message,
        list(expression) if isinstance(expression, list | tuple) else None,
    )
    issues = error.extra.get("issues")
    if isinstance(issues, list) and issues:
        body["issue"] = issues
    return AuditedOutcome(orjson.dumps(body), request, error, code)


class AuditedOutcome(Response):
    """An OperationOutcome that, before it is sent, has the failure of an authenticated request
    whose operation wrote no audit record recorded (a read answering 404 or 410, a create
    refused with 400): every request that reached PHI checks leaves a record."""

    def __init__(self, content: bytes, request: Request, error: MedmeshError, issue: str) -> None:
        super().__init__(
            content, status_code=error.status, headers=error.headers, media_type=FHIR_JSON
        )
        self.request = request
        self.error = error
        self.issue = issue

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        components = getattr(self.request.app.state, "phi", None)
        if components is not None:
            await components.auditor.record_failure(self.request, self.error, self.issue)
        await super().__call__(scope, receive, send)


class FhirError(MedmeshError):
    """A FHIR API failure (rendered as OperationOutcome)."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        issue_code: str | None = None,
        expression: list[str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        extra: dict[str, Any] = {}
        if issue_code:
            extra["issue_code"] = issue_code
        if expression:
            extra["expression"] = expression
        super().__init__(
            message, status=status, code=issue_code or "fhir_error", headers=headers, extra=extra
        )


class InvalidResource(FhirError):
    status, code = 400, "invalid"


class ResourceNotFound(FhirError):
    status, code = 404, "not-found"


class ResourceGone(FhirError):
    status, code = 410, "deleted"


class VersionConflict(FhirError):
    status, code = 412, "conflict"


class UnsupportedResourceType(FhirError):
    status, code = 404, "not-supported"
