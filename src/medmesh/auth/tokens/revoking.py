"""What ends tokens and what tells whether one still lives: introspection (RFC 7662),
revocation (RFC 7009), the revocations of a user, a client or a reused refresh token, and the
cleanup of what expired."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.auth.clients.service import ClientView
from medmesh.auth.models import RefreshToken
from medmesh.auth.tokens.issuing import (
    LONGEST_ACCESS_TOKEN_SECONDS,
    REFRESH_PREFIX,
    hash_refresh_token,
)
from medmesh.auth.tokens.repository import RefreshTokenRepository, RevocationRepository
from medmesh.auth.tokens.revocations import RevocationCache
from medmesh.auth.tokens.verification import LEEWAY_SECONDS, IssuedTokenValidator
from medmesh.platform.audit import AuditRecord, AuditTrail
from medmesh.platform.db import Database, SessionSource, utcnow
from medmesh.platform.origin import RequestOrigin


class TokenRevoker:
    def __init__(
        self,
        database: Database,
        revocations: RevocationCache,
        validator: IssuedTokenValidator,
        audit: AuditTrail,
    ) -> None:
        self.database = database
        self.revocations = revocations
        self.validator = validator
        self.audit = audit

    async def _audit(
        self, ctx: RequestOrigin, action: str, outcome: str = "success", **fields: Any
    ) -> None:
        await self.audit.record(AuditRecord.for_origin(ctx, action, outcome=outcome, **fields))

    async def introspect(
        self, session: SessionSource, caller: ClientView, token: str
    ) -> dict[str, Any]:
        """RFC 7662: the token's state; anything invalid is just ``{"active": false}``.

        An access token is checked without the database (signature, time, revocation cache)."""
        if token.startswith(REFRESH_PREFIX):
            stored = await RefreshTokenRepository(session()).by_hash(hash_refresh_token(token))
            now = utcnow()
            if (
                stored is None
                or stored.client_id != caller.client_id
                or stored.used_at is not None
                or stored.revoked_at is not None
                or stored.expires_at <= now
            ):
                return {"active": False}
            return {
                "active": True,
                "token_type": "refresh_token",
                "client_id": stored.client_id,
                "sub": stored.user_id,
                "scope": stored.scope,
                "exp": int(stored.expires_at.timestamp()),
                "iat": int(stored.created_at.timestamp()),
            }
        claims = self.validator.claims(token)
        if claims is None or await self.revocations.refuses_claims(claims):
            return {"active": False}
        return {"active": True, "token_type": "Bearer", **claims}

    async def revoke(
        self, session: AsyncSession, ctx: RequestOrigin, caller: ClientView, token: str
    ) -> None:
        """RFC 7009: revoke a refresh token (its family) or an access token (by jti until expiry)."""
        now = utcnow()
        if token.startswith(REFRESH_PREFIX):
            repo = RefreshTokenRepository(session)
            stored = await repo.by_hash(hash_refresh_token(token))
            if stored is None or stored.client_id != caller.client_id:
                return
            await repo.revoke_family(stored.family_id, now)
            await self.record_revocation(session, "sid", stored.family_id)
            await self._audit(
                ctx,
                "auth.token_revoked",
                actor=stored.user_id,
                client_id=caller.client_id,
                details={"token_type": "refresh_token", "family": stored.family_id},
            )
            return
        claims = self.validator.claims(token)
        if claims is None or claims.get("client_id") != caller.client_id:
            return
        expires = datetime.fromtimestamp(float(claims["exp"]) + LEEWAY_SECONDS, UTC)
        await self.record_revocation(session, "jti", claims["jti"], expires)
        await self._audit(
            ctx,
            "auth.token_revoked",
            actor=str(claims.get("sub")),
            client_id=caller.client_id,
            details={"token_type": "access_token", "jti": claims["jti"]},
        )

    async def record_revocation(
        self, session: AsyncSession, kind: str, value: str, keep_until: datetime | None = None
    ) -> None:
        """Record a revocation (kept until no token it refuses can be alive) and apply it here.

        Other replicas and the resource servers see it within their sync interval."""
        now = utcnow()
        if keep_until is None:
            keep_until = now + timedelta(seconds=LONGEST_ACCESS_TOKEN_SECONDS + LEEWAY_SECONDS)
        row = await RevocationRepository(session).add(kind, value, now, keep_until)
        self.revocations.add(row)

    async def revoke_family_after_reuse(
        self, session: AsyncSession, ctx: RequestOrigin, stored: RefreshToken
    ) -> None:
        """A rotated refresh token came again: its whole family is revoked, and stays revoked
        although the request fails."""
        family, user_id, client_id = stored.family_id, stored.user_id, stored.client_id
        # The request's transaction is about to fail; the revocation must survive it.
        await session.rollback()
        async with self.database.write_lock, self.database.unit_of_work() as own:
            await RefreshTokenRepository(own).revoke_family(family, utcnow())
            await self.record_revocation(own, "sid", family)
        await self._audit(
            ctx,
            "auth.refresh_reuse",
            "failure",
            actor=user_id,
            client_id=client_id,
            details={"family": family, "action": "family_revoked"},
        )

    async def revoke_user_sessions(self, session: AsyncSession, user_id: str) -> int:
        """Revoke the user's refresh tokens (their access tokens live on: a password change)."""
        return await RefreshTokenRepository(session).revoke_for_user(user_id, utcnow())

    async def revoke_user(self, session: AsyncSession, user_id: str) -> None:
        """A user disabled or deleted: every token issued to them so far is refused."""
        await RefreshTokenRepository(session).revoke_for_user(user_id, utcnow())
        await self.record_revocation(session, "sub", user_id)

    async def revoke_client(self, session: AsyncSession, client_id: str) -> None:
        """A client disabled or deleted: every token issued to it so far is refused."""
        await RefreshTokenRepository(session).revoke_for_client(client_id, utcnow())
        await self.record_revocation(session, "client", client_id)

    async def cleanup(self) -> tuple[int, int]:
        """Delete expired refresh tokens and revocation entries (the cleanup job)."""
        now = utcnow()
        async with self.database.write_lock, self.database.unit_of_work() as session:
            refresh = await RefreshTokenRepository(session).delete_expired(now)
            revoked = await RevocationRepository(session).delete_expired(now)
        return refresh, revoked
