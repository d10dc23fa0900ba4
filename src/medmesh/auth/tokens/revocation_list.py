"""The published revocation list (``GET /oauth/revocations``), which resource servers pull.

Every entry is keyed by :func:`~medmesh.platform.tokens.revocation.revocation_key` (a SHA-256 of
kind and value), so the public list names no user, client or token; ``revoked_at`` is the
second of the revocation (tokens of a revoked user or client issued up to that second are
refused) and ``keep_until`` when the entry can be forgotten.

The cursor is the position ``(revoked_at, id)`` of the last row read. A page that ends the list
hands back a cursor ``CURSOR_OVERLAP`` before its newest row, so the next pull reads the last
few seconds again: a row committed a little after another replica's later row (its timestamp
was taken first) is not skipped. Entries read twice are merged by the reader.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.auth.oauth import InvalidRequest
from medmesh.auth.tokens.repository import RevocationRepository
from medmesh.auth.tokens.revocations import SYNC_OVERLAP
from medmesh.platform.db import utcnow
from medmesh.platform.tokens import revocation_key

PAGE_SIZE = 5_000
CURSOR_OVERLAP = SYNC_OVERLAP
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_CURSOR = re.compile(r"^(\d{1,18})\.(\d{1,18})$")


def _encode(at: datetime, row_id: int) -> str:
    return f"{(at - _EPOCH) // _MICROSECOND}.{row_id}"


def _decode(cursor: str) -> tuple[datetime, int]:
    match = _CURSOR.match(cursor)
    if match is None:
        raise InvalidRequest("after is not a cursor this server handed out")
    return _EPOCH + int(match.group(1)) * _MICROSECOND, int(match.group(2))


async def revocation_page(
    session: AsyncSession, after: str | None, limit: int | None = None
) -> dict[str, Any]:
    """One page of the list after the cursor ``after`` (from the start without it)."""
    limit = limit or PAGE_SIZE
    position = _decode(after) if after is not None else None
    now = utcnow()
    rows = await RevocationRepository(session).page(position, now, limit)
    complete = len(rows) < limit
    if not complete:
        cursor = _encode(rows[-1].revoked_at, rows[-1].id)
    elif rows:
        cursor = _encode(min(rows[-1].revoked_at, now) - CURSOR_OVERLAP, 0)
    elif after is not None:
        cursor = after
    else:
        cursor = _encode(now - CURSOR_OVERLAP, 0)
    return {
        "revocations": [
            {
                "key": revocation_key(row.kind, row.value),
                "revoked_at": int(row.revoked_at.timestamp()),
                "keep_until": int(row.keep_until.timestamp()) + 1,
            }
            for row in rows
        ],
        "cursor": cursor,
        "complete": complete,
    }
