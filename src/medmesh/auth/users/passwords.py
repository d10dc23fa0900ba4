"""Password hashing with argon2id (OWASP parameters: m=19 MiB, t=2, p=1).

Hashing runs in worker threads (argon2 releases the GIL) behind a semaphore: at
most ``max_concurrent`` hashes at once, so a burst of logins queues instead of
exhausting memory (each hash holds ``memory_kib`` of RAM).
"""

from __future__ import annotations

import asyncio
import unicodedata

from argon2 import PasswordHasher as Argon2Hasher
from argon2 import Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


def normalize_password(password: str) -> str:
    """NFKC, so the same password typed on different keyboards hashes the same (NIST 800-63B)."""
    return unicodedata.normalize("NFKC", password)


class PasswordHasher:
    """argon2id hashing and verification, bounded in concurrency."""

    def __init__(
        self,
        memory_kib: int = 19_456,
        time_cost: int = 2,
        parallelism: int = 1,
        max_concurrent: int = 4,
    ) -> None:
        self._hasher = Argon2Hasher(
            time_cost=time_cost,
            memory_cost=memory_kib,
            parallelism=parallelism,
            hash_len=32,
            salt_len=16,
            type=Type.ID,
        )
        self._slots = asyncio.Semaphore(max_concurrent)
        self._dummy: str | None = None

    async def hash(self, password: str) -> str:
        async with self._slots:
            return await asyncio.to_thread(self._hasher.hash, normalize_password(password))

    async def verify(self, password_hash: str, password: str) -> bool:
        """True when ``password`` matches; never raises for a wrong password or a bad hash."""
        async with self._slots:
            return await asyncio.to_thread(
                self._verify, password_hash, normalize_password(password)
            )

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        """True when the hash was made with other parameters than the current ones."""
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True

    async def burn(self, password: str) -> None:
        """Spend the time of one verification (for unknown users, so timing reveals nothing)."""
        if self._dummy is None:
            self._dummy = await self.hash("medmesh-timing-equaliser")
        await self.verify(self._dummy, password)
