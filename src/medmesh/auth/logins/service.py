"""Login protection: growing delays, then a temporary lockout, per account and per source IP.

After ``delay_after`` consecutive failures an account must wait 1, 2, 4, ...
seconds (capped) before the next attempt; after ``lockout_after`` failures it is
locked for ``lockout_seconds``. A source IP that fails ``ip_lockout_after``
times is locked the same way. Nothing locks permanently (that would let anyone
lock a victim out for good), counters reset after a quiet window, and unknown
usernames are counted like real ones so the answers reveal nothing.

Counters are written in their own transaction: the failed request rolls back,
the count of its failure must not.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.auth.logins.repository import LoginAttemptRepository
from medmesh.auth.models import LoginAttempts
from medmesh.auth.oauth import InvalidGrant
from medmesh.platform.db import Database, utcnow


class LoginThrottled(InvalidGrant):
    """Too many failed sign-ins for this account or source; retry later."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"too many failed sign-in attempts; retry in {retry_after} seconds",
            headers={"Retry-After": str(retry_after)},
        )
        self.retry_after = retry_after


@dataclass(frozen=True)
class ThrottlePolicy:
    delay_after: int = 3
    lockout_after: int = 10
    lockout_seconds: int = 900
    max_delay_seconds: int = 60
    ip_lockout_after: int = 50


#: Longer names cannot be usernames (64 characters at most); their counter key is a digest so
#: that it fits the column on every database.
MAX_KEYED_USERNAME = 128


def account_key(username: str) -> str:
    name = username.strip().lower()
    if len(name) > MAX_KEYED_USERNAME:
        name = "sha256:" + hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()
    return "user:" + name


def ip_key(ip: str) -> str:
    return "ip:" + ip


class LoginThrottle:
    def __init__(self, database: Database, policy: ThrottlePolicy) -> None:
        self.database = database
        self.policy = policy

    async def check(self, session: AsyncSession, username: str, ip: str) -> None:
        """Raise :class:`LoginThrottled` when the account or the source must wait (read in the
        request's session: a second connection per request could exhaust the pool)."""
        now = utcnow()
        repo = LoginAttemptRepository(session)
        waits = []
        for key in (account_key(username), ip_key(ip)):
            row = await repo.get(key)
            if row is not None and row.locked_until is not None and row.locked_until > now:
                waits.append(math.ceil((row.locked_until - now).total_seconds()))
        if waits:
            raise LoginThrottled(max(1, max(waits)))

    async def failed(self, username: str, ip: str) -> None:
        """Count a failure against the account and the source, in a transaction of its own (the
        request's fails). Callers release the request's session first: see TokenService.password."""
        now = utcnow()
        async with self.database.write_lock, self.database.unit_of_work() as session:
            repo = LoginAttemptRepository(session)
            await self._count(repo, account_key(username), now)
            await self._count(repo, ip_key(ip), now)

    async def succeeded(self, session: AsyncSession, username: str) -> None:
        """A successful sign-in clears the account's counter (not the source's), in the request's
        transaction."""
        await LoginAttemptRepository(session).clear(account_key(username))

    async def unlock(self, session: AsyncSession, username: str) -> None:
        await LoginAttemptRepository(session).clear(account_key(username))

    async def _count(self, repo: LoginAttemptRepository, key: str, now: datetime) -> None:
        row = await repo.get(key)
        window = timedelta(seconds=self.policy.lockout_seconds)
        if row is None:
            row = LoginAttempts(key=key, failures=0, last_failure_at=now)
            await repo.add(row)
        elif now - row.last_failure_at > window:
            row.failures = 0
        row.failures += 1
        row.last_failure_at = now
        seconds = (
            self._account_lock(row.failures)
            if key.startswith("user:")
            else self._ip_lock(row.failures)
        )
        row.locked_until = now + timedelta(seconds=seconds) if seconds else None

    def _account_lock(self, failures: int) -> int:
        p = self.policy
        if failures >= p.lockout_after:
            return p.lockout_seconds
        if failures >= p.delay_after:
            return int(min(2 ** (failures - p.delay_after), p.max_delay_seconds))
        return 0

    def _ip_lock(self, failures: int) -> int:
        return self.policy.lockout_seconds if failures >= self.policy.ip_lockout_after else 0

    async def forget_stale(self) -> int:
        """Delete counters that have been quiet for a whole window (cleanup job)."""
        before = utcnow() - timedelta(seconds=self.policy.lockout_seconds)
        async with self.database.write_lock, self.database.unit_of_work() as session:
            return await LoginAttemptRepository(session).delete_stale(before)
