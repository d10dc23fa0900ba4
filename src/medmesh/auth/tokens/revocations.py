"""The revocation cache: which access tokens (by ``jti``) were revoked before expiry.

Introspection must answer from memory to stay fast, yet a revocation made by
another replica must be seen quickly. Each process keeps the set of revoked,
not-yet-expired ``jti``s and pulls what was revoked since its last sync every
``sync_seconds`` (1 s by default); revocations made by this process apply at once.

One request at a time syncs; the others answer from memory meanwhile (at most one sync
interval older). Without that, every request arriving after an interval would open its own
database session while holding the request's one, and a burst larger than the connection pool
would wait on itself until the pool timed out.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta

from medmesh.auth.tokens.repository import RevocationRepository
from medmesh.platform.db import Database, utcnow


class RevocationCache:
    def __init__(self, database: Database, sync_seconds: float = 1.0) -> None:
        self.database = database
        self.sync_seconds = sync_seconds
        self._revoked: dict[str, datetime] = {}
        self._synced_at = float("-inf")
        self._high_water: datetime | None = None
        self._syncing = asyncio.Lock()

    def add(self, jti: str, expires_at: datetime) -> None:
        self._revoked[jti] = expires_at

    async def is_revoked(self, jti: str) -> bool:
        if time.monotonic() - self._synced_at >= self.sync_seconds and not self._syncing.locked():
            async with self._syncing:
                await self.sync()
        return jti in self._revoked

    async def sync(self) -> None:
        """Pull revocations made since the last sync (by any replica); drop expired ones."""
        now = utcnow()
        # Overlap the window a little: rows committed late with an earlier timestamp are not missed.
        after = self._high_water - timedelta(seconds=5) if self._high_water else None
        async with self.database.sessionmaker() as session:
            rows = await RevocationRepository(session).since(after, now)
        for row in rows:
            if row.kind == "jti":
                self._revoked[row.value] = row.keep_until
            if self._high_water is None or row.revoked_at > self._high_water:
                self._high_water = row.revoked_at
        if self._high_water is None:
            self._high_water = now - timedelta(seconds=5)
        self._revoked = {jti: exp for jti, exp in self._revoked.items() if exp > now}
        self._synced_at = time.monotonic()
