"""HTTP details of the FHIR API: bodies in, resources and Bundles out, headers, ``Prefer``."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from medmesh.phi.fhir import jsontext
from medmesh.phi.fhir.errors import FHIR_JSON, FhirError, InvalidResource, operation_outcome

ACCEPTED_TYPES = ("application/fhir+json", "application/json", "application/json+fhir")


async def read_json_body(request: Request) -> Any:
    """The parsed JSON body, decimals as written (:mod:`.jsontext`); 415 for other media types,
    400 for invalid JSON or a string holding U+0000."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type and content_type not in ACCEPTED_TYPES:
        raise FhirError("send application/fhir+json", status=415, issue_code="not-supported")
    body = await request.body()
    if not body:
        raise InvalidResource("the request has no body", issue_code="required")
    try:
        parsed = jsontext.loads(body)
    except (ValueError, RecursionError):
        raise InvalidResource("the body is not valid JSON", issue_code="structure") from None
    # JSON can carry NUL only escaped, so a body without the escape needs no walk.
    if _NUL_ESCAPE in body and _holds_nul(parsed):
        raise InvalidResource(
            "strings may not contain the NUL character (\\u0000)", issue_code="value"
        )
    return parsed


_NUL_ESCAPE = b"\\u0000"


def _holds_nul(value: Any) -> bool:
    """True when a string (or an object key) anywhere in ``value`` contains U+0000, which a
    FHIR string may not (FHIR R4 "string": no characters below U+0020 but tab, CR and LF)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def fhir_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(jsontext.dumps(body), status_code=status, headers=headers, media_type=FHIR_JSON)


def prefer_return(request: Request) -> str:
    """``minimal``, ``representation`` (default) or ``OperationOutcome`` from ``Prefer: return=``."""
    for part in request.headers.get("prefer", "").split(";"):
        name, _, value = part.strip().partition("=")
        if name.strip() == "return" and value.strip() in (
            "minimal",
            "representation",
            "OperationOutcome",
        ):
            return value.strip()
    return "representation"


def prefer_lenient(request: Request) -> bool:
    """True under ``Prefer: handling=lenient`` (unknown search parameters are ignored)."""
    for part in request.headers.get("prefer", "").split(";"):
        name, _, value = part.strip().partition("=")
        if name.strip() == "handling" and value.strip() == "lenient":
            return True
    return False


def write_response(
    request: Request, resource: dict[str, Any], status: int, headers: dict[str, str], message: str
) -> Response:
    """The answer to a create/update honouring ``Prefer: return=``."""
    chosen = prefer_return(request)
    if chosen == "minimal":
        return Response(status_code=status, headers=headers)
    if chosen == "OperationOutcome":
        return fhir_response(
            operation_outcome("information", "informational", message), status, headers
        )
    return fhir_response(resource, status, headers)
