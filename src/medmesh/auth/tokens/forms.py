"""Parsing of ``application/x-www-form-urlencoded`` OAuth requests and client authentication.

RFC 6749: parameters must not repeat (§3.2), the client authenticates with
HTTP Basic (client_secret_basic, §2.3.1, form-urlencoded id and secret) or with
``client_id``/``client_secret`` in the body (client_secret_post) but never both: a request that
uses two methods is ``invalid_request`` (§2.3, §5.2), not a failed authentication.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from urllib.parse import unquote_plus

from starlette.requests import Request

from medmesh.auth.oauth import InvalidClient, InvalidRequest

MAX_FIELDS = 32
ONE_METHOD = "use exactly one client authentication method"
MAX_VALUE = 8192


@dataclass(frozen=True, slots=True)
class ClientCredentials:
    client_id: str
    client_secret: str


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _has_control(value: str) -> bool:
    return _CONTROL.search(value) is not None


def _clean(value: str, name: str) -> str:
    if len(value) > MAX_VALUE:
        raise InvalidRequest(f"parameter {name!r} is too long")
    if _has_control(value):
        raise InvalidRequest(f"parameter {name!r} contains control characters")
    return value


def _decode(part: str) -> str:
    # Most OAuth parameters hold no escapes: skip the decoder for them.
    return unquote_plus(part, errors="strict") if "%" in part or "+" in part else part


def parse_pairs(text: str) -> list[tuple[str, str]]:
    """``name=value`` pairs of a form body, as ``parse_qsl(strict_parsing=True,
    keep_blank_values=True, max_num_fields=MAX_FIELDS, errors="strict")`` gives them, at a
    third of its cost (the token endpoint reads a form on every request)."""
    if not text:
        return []
    parts = text.split("&")
    if len(parts) > MAX_FIELDS:
        raise ValueError("too many fields")
    pairs = []
    for part in parts:
        name, sep, value = part.partition("=")
        if not sep:
            raise ValueError("a form field has no '='")
        pairs.append((_decode(name), _decode(value)))
    return pairs


async def read_form(request: Request) -> dict[str, str]:
    """The request's form parameters; 400 ``invalid_request`` for anything malformed."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise InvalidRequest("the body must be application/x-www-form-urlencoded")
    body = await request.body()
    try:
        pairs = parse_pairs(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise InvalidRequest("the form body is malformed") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        _clean(name, "name")
        if name in form:
            raise InvalidRequest(f"parameter {name!r} is repeated")
        form[name] = _clean(value, name)
    return form


def client_credentials(request: Request, form: dict[str, str]) -> ClientCredentials:
    """The client's id and secret from Basic auth or the body (exactly one of them)."""
    header = request.headers.get("authorization")
    in_body = "client_secret" in form
    if header is not None:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            raise InvalidClient("use HTTP Basic or the form body to authenticate the client")
        if in_body:
            raise InvalidRequest(ONE_METHOD)
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise InvalidClient("malformed Basic credentials") from None
        raw_id, sep, raw_secret = decoded.partition(":")
        if not sep:
            raise InvalidClient("malformed Basic credentials")
        client_id, secret = unquote_plus(raw_id), unquote_plus(raw_secret)
        if _has_control(client_id) or _has_control(secret):
            raise InvalidClient("malformed Basic credentials")
        if form.get("client_id") not in (None, client_id):
            raise InvalidRequest("client_id does not match the authenticated client")
        return ClientCredentials(client_id, secret)
    if in_body and form.get("client_id"):
        return ClientCredentials(form["client_id"], form["client_secret"])
    raise InvalidClient("client authentication is required")
