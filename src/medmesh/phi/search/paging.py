"""Opaque keyset cursors and the ``self``/``next``/``previous`` links of search and history Bundles.

A cursor is the sort key of the row a page starts after (or, for ``previous``, ends before),
base64url-encoded: a page stays correct when resources are added or removed meanwhile.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import orjson

from medmesh.phi.fhir.errors import InvalidResource

PAGE_PARAM = "_page"


def encode_cursor(values: Sequence[Any], *, backwards: bool = False) -> str:
    """The cursor of a position; datetimes keep their type."""
    items = [{"t": v.isoformat()} if isinstance(v, datetime) else v for v in values]
    raw = orjson.dumps({"k": items, "b": backwards})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str, size: int) -> tuple[list[Any], bool]:
    """The position and direction of a cursor made by :func:`encode_cursor` for ``size`` keys."""
    try:
        data = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        items = data["k"]
        if not isinstance(items, list) or len(items) != size:
            raise ValueError
        values = [datetime.fromisoformat(v["t"]) if isinstance(v, dict) else v for v in items]
        if not all(isinstance(v, str | int | datetime) for v in values):
            raise ValueError
        return values, bool(data.get("b"))
    except (ValueError, TypeError, KeyError, binascii.Error, orjson.JSONDecodeError):
        raise InvalidResource(
            "the page cursor is not valid (start the search again)", issue_code="value"
        ) from None


def page_url(base: str, path: str, params: Sequence[tuple[str, str]], cursor: str | None) -> str:
    """``base/path?params`` with the cursor (if any) as ``_page``."""
    items = list(params) + ([(PAGE_PARAM, cursor)] if cursor else [])
    query = urlencode(items)
    return f"{base}/{path}" + (f"?{query}" if query else "")
