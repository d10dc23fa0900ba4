"""Signing keys: the key ring that signs access tokens and the JWKS that publishes it.

Private keys are stored encrypted (AES-256-GCM envelope, ``platform.crypto``)
under the key-encryption keys of ``MEDMESH_AUTH_KEY_ENCRYPTION_KEYS``. Rotation
makes a new key active and keeps every retired public key in the JWKS until the
last token it signed has expired (access-token lifetime plus leeway), so
resource servers never meet a token whose key they cannot find.

New keys use the configured algorithm (RS256, RS384, ES256 or ES384). When the active key has
another algorithm — the setting changed — loading the ring at start-up rotates
it, so the change takes effect without an admin call and without breaking
tokens already issued.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.auth.keys.repository import SigningKeyRepository
from medmesh.auth.models import SigningKeyRecord
from medmesh.platform.crypto import KeyRing
from medmesh.platform.db import utcnow
from medmesh.platform.tokens import (
    HS256,
    PUBLIC_KEY_ALGORITHMS,
    RS256,
    SigningKey,
    VerificationKey,
    keys_from_jwks,
)

PUBLISH_LEEWAY = timedelta(minutes=5)


@dataclass
class KeyRingState:
    """What this process signs with and publishes (reloaded after each change)."""

    active: SigningKey | None = None
    active_created_at: datetime | None = None
    jwks: dict[str, Any] = field(default_factory=lambda: {"keys": []})
    verification: dict[str, VerificationKey] = field(default_factory=dict)


class SigningKeyService:
    """Loads, creates and rotates signing keys; holds the in-memory key ring."""

    def __init__(
        self, kek: KeyRing, max_token_ttl_seconds: int, hs256_secret: str = "", *, alg: str = RS256
    ) -> None:
        if alg not in PUBLIC_KEY_ALGORITHMS:
            raise ValueError(
                f"signing keys are {', '.join(sorted(PUBLIC_KEY_ALGORITHMS))}, not {alg!r}"
            )
        self.kek = kek
        self.alg = alg
        self.max_token_ttl = timedelta(seconds=max_token_ttl_seconds)
        self.state = KeyRingState()
        self.hs256 = SigningKey.hs256(hs256_secret, kid="hs256") if hs256_secret else None
        #: Called with the new state after every (re)load: the app's own verifier follows the ring.
        self.listeners: list[Callable[[KeyRingState], None]] = []

    @property
    def signing_alg(self) -> str:
        """The algorithm new tokens are signed with."""
        return HS256 if self.hs256 is not None else self.alg

    @property
    def signer(self) -> SigningKey:
        """The key that signs new tokens (HS256 when a shared secret is configured)."""
        if self.hs256 is not None:
            return self.hs256
        if self.state.active is None:
            raise RuntimeError("no active signing key: the key ring was not loaded")
        return self.state.active

    async def load(self, session: AsyncSession, *, create_if_missing: bool = True) -> KeyRingState:
        """Read the publishable keys; create the first key when there is none."""
        repo = SigningKeyRepository(session)
        now = utcnow()
        records = await repo.publishable(now)
        active = next((r for r in records if r.status == "active"), None)
        if create_if_missing and (active is None or active.alg != self.alg):
            active = await self._create(repo, now)
            await self._retire_others(repo, now, active.kid)
            records = await repo.publishable(now)
        state = KeyRingState()
        if active is not None:
            pem = self.kek.decrypt(active.private_key, aad=active.kid.encode())
            state.active = SigningKey.from_pem(pem, kid=active.kid, alg=active.alg)
            state.active_created_at = active.created_at
        state.jwks = {"keys": [dict(r.public_jwk) for r in records]}
        state.verification = keys_from_jwks(state.jwks)
        if self.hs256 is not None and self.hs256.kid is not None:
            state.verification[self.hs256.kid] = self.hs256.verification_key()
        self.state = state
        for listener in self.listeners:
            listener(state)
        return state

    async def rotate(self, session: AsyncSession) -> SigningKeyRecord:
        """Make a new key active; retired keys stay published until their tokens expire."""
        repo = SigningKeyRepository(session)
        now = utcnow()
        record = await self._create(repo, now)
        await self._retire_others(repo, now, record.kid)
        await self.load(session, create_if_missing=False)
        return record

    async def _retire_others(self, repo: SigningKeyRepository, now: datetime, keep: str) -> None:
        await repo.retire_active(now, now + self.max_token_ttl + PUBLISH_LEEWAY, keep=keep)

    async def list_keys(self, session: AsyncSession) -> list[SigningKeyRecord]:
        return list(await SigningKeyRepository(session).all())

    async def _create(self, repo: SigningKeyRepository, now: datetime) -> SigningKeyRecord:
        key = SigningKey.generate(self.alg)
        assert key.kid is not None
        record = SigningKeyRecord(
            kid=key.kid,
            alg=key.alg,
            private_key=self.kek.encrypt(key.private_pem(), aad=key.kid.encode()),
            public_jwk=key.public_jwk(),
            status="active",
            created_at=now,
        )
        await repo.add(record)
        return record

    def verification_keys(self) -> dict[str, VerificationKey]:
        """Keys by kid that tokens of this issuer may be signed with (for introspection)."""
        return self.state.verification

    def active_key_age_seconds(self) -> float:
        created = self.state.active_created_at
        return (utcnow() - created).total_seconds() if created else 0.0
