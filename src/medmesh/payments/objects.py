"""What every Stripe object shares: prefixed ids, ``created`` in unix seconds, list objects."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
from starlette.responses import Response

from medmesh.platform.ids import uuid7_hex


def new_id(prefix: str) -> str:
    """``<prefix>_`` and a time-ordered random part: ids sort by creation."""
    return f"{prefix}_{uuid7_hex()}"


def unix(moment: datetime | None) -> int | None:
    return int(moment.timestamp()) if moment is not None else None


def list_object(url: str, data: Sequence[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    """Stripe's list object."""
    return {"object": "list", "data": list(data), "has_more": has_more, "url": url}


def stripe_response(body: dict[str, Any], status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")
