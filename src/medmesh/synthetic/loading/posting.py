"""One POST of a Bundle to the FHIR server, and what its answer means for the loader.

Stored (200/201); worth retrying (a connection error, a 5xx, a 429 with its ``Retry-After``),
and whether it may have been stored all the same (everything but a 429); or refused (a 4xx),
with the server's reason from its OperationOutcome.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import httpx

from medmesh.platform.service_client import PeerUnavailable, ServiceClient

FHIR_JSON = "application/fhir+json"
POST_HEADERS = {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON, "Prefer": "return=minimal"}
#: Answers that mean the whole load cannot work (credentials, scopes, not a FHIR base).
REFUSING_STATUSES = frozenset({401, 403, 404, 405})
MAX_RETRY_AFTER_SECONDS = 60.0


@dataclass(frozen=True)
class Attempt:
    """What one POST of a Bundle came to."""

    stored: bool = False
    retry: bool = False
    #: The request may have been applied although no success came back.
    maybe_stored: bool = False
    status: int | None = None
    message: str = ""
    retry_after: float | None = None


def fhir_message(response: httpx.Response) -> str:
    """The first OperationOutcome issue's text, else the start of the body."""
    with contextlib.suppress(ValueError, AttributeError, IndexError, KeyError, TypeError):
        issue = response.json()["issue"][0]
        text = issue.get("diagnostics") or issue.get("details", {}).get("text") or issue["code"]
        return str(text)[:300]
    return response.text[:200] or response.reason_phrase


def retry_after_seconds(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    return (
        min(float(value), MAX_RETRY_AFTER_SECONDS) if value.isascii() and value.isdigit() else None
    )


async def post_bundle(http: ServiceClient, body: bytes) -> Attempt:
    """POST a transaction Bundle to the FHIR base and say what the answer means."""
    try:
        response = await http.post("", content=body, headers=POST_HEADERS)
    except PeerUnavailable as exc:
        return Attempt(retry=True, maybe_stored=True, message=exc.message)
    status = response.status_code
    if status in (200, 201):
        return Attempt(stored=True, status=status)
    message = fhir_message(response)
    if status == 429:
        return Attempt(
            retry=True, status=status, message=message, retry_after=retry_after_seconds(response)
        )
    if status >= 500:
        return Attempt(retry=True, maybe_stored=True, status=status, message=message)
    return Attempt(status=status, message=message)
