"""The revocation cache: every revocation (token, session, user, client) auth must refuse.

Introspection and the admin API must answer from memory to stay fast, yet a revocation made
by another replica must be seen quickly. Each process keeps the ``revocations`` rows that are
still kept (as a :class:`~medmesh.platform.tokens.revocation.RevocationSet`, the same lookup the
resource servers run) and pulls what was revoked since its last sync every ``sync_seconds``
(1 s by default); revocations made by this process apply at once.

One request at a time syncs; the others answer from memory meanwhile (at most one sync
interval older). Without that, every request arriving after an interval would open its own
database session while holding the request's one, and a burst larger than the connection pool
would wait on itself until the pool timed out.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from typing import Any

from medmesh.auth.models import Revocation
from medmesh.auth.tokens.repository import RevocationRepository
from medmesh.platform.db import Database, utcnow
from medmesh.platform.tokens import RevocationSet, revocation_key

#: Rows committed this much after their timestamp are still picked up by the next sync.
SYNC_OVERLAP = timedelta(seconds=5)


class RevocationCache:
    def __init__(self, database: Database, sync_seconds: float = 1.0) -> None:
        self.database = database
        self.sync_seconds = sync_seconds
        self.entries = RevocationSet()
        self._synced_at = float("-inf")
        self._high_water: datetime | None = None
        self._syncing = asyncio.Lock()

    def add(self, row: Revocation) -> None:
        """Apply a revocation this process just recorded (before any sync)."""
        self.entries.add(
            revocation_key(row.kind, row.value),
            int(row.revoked_at.timestamp()),
            row.keep_until.timestamp(),
        )

    async def refuses(
        self, *, jti: str | None, sid: str | None, sub: str, client_id: str, issued_at: float
    ) -> bool:
        """True when the token, its session, user or client was revoked (a ``RevocationCheck``)."""
        if time.monotonic() - self._synced_at >= self.sync_seconds and not self._syncing.locked():
            async with self._syncing:
                await self.sync()
        return self.entries.refuses(
            jti=jti, sid=sid, sub=sub, client_id=client_id, issued_at=issued_at
        )

    async def refuses_claims(self, claims: dict[str, Any]) -> bool:
        """:meth:`refuses` for the claims of a token this issuer signed (introspection)."""
        sid, client_id, iat = claims.get("sid"), claims.get("client_id"), claims.get("iat")
        return await self.refuses(
            jti=str(claims["jti"]),
            sid=sid if isinstance(sid, str) else None,
            sub=str(claims.get("sub") or ""),
            client_id=client_id if isinstance(client_id, str) else "",
            issued_at=float(iat) if isinstance(iat, int | float) else 0.0,
        )

    async def sync(self) -> None:
        """Pull revocations made since the last sync (by any replica); drop expired ones."""
        now = utcnow()
        # Overlap the window a little: rows committed late with an earlier timestamp are not missed.
        after = self._high_water - SYNC_OVERLAP if self._high_water else None
        async with self.database.sessionmaker() as session:
            rows = await RevocationRepository(session).since(after, now)
        for row in rows:
            self.add(row)
            if self._high_water is None or row.revoked_at > self._high_water:
                self._high_water = row.revoked_at
        if self._high_water is None:
            self._high_water = now - SYNC_OVERLAP
        self.entries.prune(now.timestamp())
        self._synced_at = time.monotonic()
