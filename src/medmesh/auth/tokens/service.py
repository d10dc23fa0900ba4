"""The grants of the token endpoint, introspection, revocation and userinfo.

- client_credentials: a service acting for itself; no refresh token (RFC 6749 §4.4.3).
- password: first-party apps and the CLI, only for clients that enable it; login
  protection applies per account and per source.
- refresh_token: rotation on every use; presenting a used refresh token again
  revokes its whole family (the session), because either the client or an
  attacker holds a stolen copy (OAuth 2.0 Security BCP §4.14).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.auth.authorize.requests import PROTOCOL_SCOPES
from medmesh.auth.clients.service import ClientView
from medmesh.auth.config import AuthSettings
from medmesh.auth.keys.service import SigningKeyService
from medmesh.auth.logins.service import LoginThrottle, LoginThrottled
from medmesh.auth.metrics import AuthMetrics
from medmesh.auth.models import RefreshToken, User
from medmesh.auth.oauth import InvalidGrant, InvalidRequest, UnauthorizedClient
from medmesh.auth.roles.service import RoleService
from medmesh.auth.tokens.repository import RefreshTokenRepository, RevocationRepository
from medmesh.auth.tokens.revocations import RevocationCache
from medmesh.auth.tokens.verification import LEEWAY_SECONDS, IssuedTokenValidator
from medmesh.auth.users.repository import UserRepository
from medmesh.auth.users.service import UserService
from medmesh.platform.audit import AuditRecord, AuditTrail
from medmesh.platform.db import Database, SessionSource, utcnow
from medmesh.platform.origin import RequestOrigin
from medmesh.platform.tokens import InvalidScope, ScopeSet, narrow

REFRESH_PREFIX = "mmrt_"
#: No access token lives longer (the settings and client lifetimes are capped at a day): a
#: session, user or client revocation is kept this long after it was made.
LONGEST_ACCESS_TOKEN_SECONDS = 86_400


def at_hash(access_token: str, alg: str) -> str:
    """OIDC Core §3.1.3.6: the left half of the access token's hash under the ID token's alg."""
    digest = (hashlib.sha384 if alg.endswith("384") else hashlib.sha256)(
        access_token.encode("ascii")
    ).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode()


def hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(slots=True)
class IssuedTokens:
    access_token: str
    expires_in: int
    scope: str
    refresh_token: str | None = None
    id_token: str | None = None
    #: SMART launch context of the response (``patient``, ``need_patient_banner``, ``fhirUser``).
    context: dict[str, Any] = field(default_factory=dict)

    def as_response(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "scope": self.scope,
        }
        if self.refresh_token is not None:
            body["refresh_token"] = self.refresh_token
        if self.id_token is not None:
            body["id_token"] = self.id_token
        body.update(self.context)
        return body


def _covered(scope: str, allowed: ScopeSet) -> str:
    """The scopes of ``scope`` that ``allowed`` covers (silently dropping the others)."""
    kept = []
    for item in ScopeSet(scope):
        try:
            narrow(item, allowed)
        except InvalidScope:
            continue
        kept.append(item)
    return " ".join(kept)


class TokenService:
    def __init__(
        self,
        settings: AuthSettings,
        database: Database,
        keys: SigningKeyService,
        users: UserService,
        roles: RoleService,
        throttle: LoginThrottle,
        revocations: RevocationCache,
        audit: AuditTrail,
        metrics: AuthMetrics,
    ) -> None:
        self.settings = settings
        self.database = database
        self.keys = keys
        self.users = users
        self.roles = roles
        self.throttle = throttle
        self.revocations = revocations
        self.audit = audit
        self.metrics = metrics
        self.validator = IssuedTokenValidator(keys, settings.issuer)
        grants = ("client_credentials", "password", "refresh_token", "authorization_code")
        self._issued = {grant: metrics.tokens_issued.labels(grant) for grant in grants}

    # --- access tokens ------------------------------------------------------------------

    def _audiences(self, client: ClientView, requested: str | None) -> list[str]:
        if not requested:
            return list(client.audiences)
        wanted = requested.split()
        unknown = [a for a in wanted if a not in client.audiences]
        if unknown:
            raise InvalidRequest("audience is not allowed for this client", code="invalid_target")
        return wanted

    def issue_access_token(
        self,
        client: ClientView,
        *,
        sub: str,
        scope: str,
        roles: list[str],
        audiences: list[str],
        patient: str | None = None,
        fhir_user: str | None = None,
        sid: str | None = None,
    ) -> tuple[str, int]:
        """Sign an access token (ARCHITECTURE §4 claims); returns it and its lifetime."""
        ttl = client.access_token_ttl_seconds or self.settings.access_token_ttl_seconds
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.settings.issuer,
            "sub": sub,
            "aud": audiences,
            "exp": now + ttl,
            "iat": now,
            "nbf": now,
            "jti": secrets.token_hex(16),
            "scope": scope,
            "client_id": client.client_id,
            "roles": roles,
        }
        if patient is not None:
            claims["patient"] = patient
        if fhir_user is not None:
            claims["fhirUser"] = fhir_user
        if sid is not None:
            # The session (refresh family): revoking it refuses its access tokens too.
            claims["sid"] = sid
        return self.keys.signer.sign(claims), ttl

    def _id_token(
        self,
        client: ClientView,
        user: User,
        access_token: str,
        nonce: str | None = None,
        auth_time: datetime | None = None,
    ) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.settings.issuer,
            "sub": user.id,
            "aud": client.client_id,
            "azp": client.client_id,
            "exp": now + self.settings.id_token_ttl_seconds,
            "iat": now,
            "auth_time": int(auth_time.timestamp()) if auth_time else now,
            "at_hash": at_hash(access_token, self.keys.signing_alg),
            "preferred_username": user.username,
        }
        if nonce is not None:
            claims["nonce"] = nonce
        if user.fhir_user:
            claims["fhirUser"] = user.fhir_user
        return self.keys.signer.sign(claims)

    async def _audit(
        self, ctx: RequestOrigin, action: str, outcome: str = "success", **fields: Any
    ) -> None:
        await self.audit.record(AuditRecord.for_origin(ctx, action, outcome=outcome, **fields))

    # --- grants -------------------------------------------------------------------------

    @staticmethod
    def _require_grant(client: ClientView, grant: str) -> None:
        if grant not in client.grant_types:
            raise UnauthorizedClient(f"this client may not use the {grant} grant")

    async def client_credentials(
        self, ctx: RequestOrigin, client: ClientView, scope: str | None, audience: str | None
    ) -> IssuedTokens:
        self._require_grant(client, "client_credentials")
        granted = narrow(scope or "", client.scopes)
        audiences = self._audiences(client, audience)
        token, ttl = self.issue_access_token(
            client,
            sub=client.client_id,
            scope=granted,
            roles=list(client.roles),
            audiences=audiences,
        )
        self._issued["client_credentials"].inc()
        await self._audit(
            ctx,
            "auth.token_issued",
            actor=client.client_id,
            client_id=client.client_id,
            details={"grant_type": "client_credentials", "scope": granted},
        )
        return IssuedTokens(token, ttl, granted)

    async def _user_tokens(
        self,
        session: AsyncSession,
        client: ClientView,
        user: User,
        scope: str,
        audiences: list[str],
        family_id: str | None,
    ) -> IssuedTokens:
        return await self.user_tokens(session, client, user, scope, audiences, family_id)

    async def user_tokens(
        self,
        session: AsyncSession,
        client: ClientView,
        user: User,
        scope: str,
        audiences: list[str],
        family_id: str | None,
        *,
        nonce: str | None = None,
        patient: str | None = None,
        auth_time: datetime | None = None,
        refresh: bool = True,
    ) -> IssuedTokens:
        """A user's access token, a refresh token (when the client may refresh and ``refresh``)
        and an ID token (``openid`` in scope) of session ``family_id``."""
        family_id = family_id or uuid.uuid4().hex
        access, ttl = self.issue_access_token(
            client,
            sub=user.id,
            scope=scope,
            roles=list(user.roles),
            audiences=audiences,
            patient=patient or user.patient_id,
            fhir_user=user.fhir_user,
            sid=family_id,
        )
        issued = IssuedTokens(access, ttl, scope)
        if refresh and "refresh_token" in client.grant_types:
            raw = REFRESH_PREFIX + secrets.token_urlsafe(32)
            now = utcnow()
            await RefreshTokenRepository(session).add(
                RefreshToken(
                    id=uuid.uuid4().hex,
                    token_hash=hash_refresh_token(raw),
                    family_id=family_id,
                    client_id=client.client_id,
                    user_id=user.id,
                    scope=scope,
                    audiences=audiences,
                    patient=patient,
                    created_at=now,
                    expires_at=now + timedelta(seconds=self.settings.refresh_token_ttl_seconds),
                )
            )
            issued.refresh_token = raw
        if "openid" in scope.split():
            issued.id_token = self._id_token(client, user, access, nonce, auth_time)
        return issued

    async def _user_scope(
        self, session: AsyncSession, client: ClientView, user: User, requested: str | None
    ) -> str:
        user_scopes = await self.roles.scopes_of(session, user.roles)
        if requested:
            return narrow(narrow(requested, user_scopes), client.scopes)
        return _covered(str(user_scopes), client.scopes)

    async def password(
        self,
        session: AsyncSession,
        ctx: RequestOrigin,
        client: ClientView,
        username: str,
        password: str,
        scope: str | None,
        audience: str | None,
    ) -> IssuedTokens:
        self._require_grant(client, "password")
        try:
            await self.throttle.check(session, username, ctx.ip)
        except LoginThrottled:
            self.metrics.login_failures.labels("throttled").inc()
            await self._audit(
                ctx,
                "auth.login",
                "failure",
                client_id=client.client_id,
                details={"reason": "throttled"},
            )
            raise
        user = await self.users.verify_password(session, username, password)
        if user is None:
            # The request fails: release its connection before the counter's own transaction.
            await session.rollback()
            await self.throttle.failed(username, ctx.ip)
            self.metrics.login_failures.labels("bad_credentials").inc()
            await self._audit(
                ctx,
                "auth.login",
                "failure",
                client_id=client.client_id,
                details={"reason": "bad_credentials"},
            )
            raise InvalidGrant("invalid username or password")
        await self.throttle.succeeded(session, username)
        granted = await self._user_scope(session, client, user, scope)
        issued = await self._user_tokens(
            session, client, user, granted, self._audiences(client, audience), None
        )
        self._issued["password"].inc()
        await self._audit(
            ctx,
            "auth.login",
            actor=user.id,
            client_id=client.client_id,
            roles=user.roles,
            details={"grant_type": "password", "scope": granted},
        )
        return issued

    async def refresh(
        self,
        session: AsyncSession,
        ctx: RequestOrigin,
        client: ClientView,
        raw: str,
        scope: str | None,
    ) -> IssuedTokens:
        self._require_grant(client, "refresh_token")
        repo = RefreshTokenRepository(session)
        now = utcnow()
        stored = await repo.by_hash(hash_refresh_token(raw))
        if stored is None or stored.client_id != client.client_id:
            raise InvalidGrant("refresh token is invalid")
        if stored.revoked_at is not None or stored.expires_at <= now:
            raise InvalidGrant("refresh token is expired or revoked")
        if stored.used_at is not None or not await repo.mark_used(stored.id, now):
            await self._revoke_family_after_reuse(session, ctx, stored)
            raise InvalidGrant("refresh token was already used; the session has been revoked")
        user = await UserRepository(session).get(stored.user_id) if stored.user_id else None
        if user is None or user.disabled:
            raise InvalidGrant("the user of this refresh token is no longer active")
        held = await self.roles.scopes_of(session, user.roles)
        # What the person granted an app beyond their role (offline_access, launch context)
        # stays granted for the session; the data scopes follow the role as it is now.
        protocol = [item for item in stored.scope.split() if item in PROTOCOL_SCOPES]
        allowed = _covered(stored.scope, ScopeSet([*held, *protocol]))
        granted = narrow(scope, ScopeSet(allowed)) if scope else allowed
        issued = await self.user_tokens(
            session,
            client,
            user,
            granted,
            list(stored.audiences),
            stored.family_id,
            patient=stored.patient,
        )
        self._issued["refresh_token"].inc()
        await self._audit(
            ctx,
            "auth.token_refreshed",
            actor=user.id,
            client_id=client.client_id,
            details={"family": stored.family_id},
        )
        return issued

    async def _revoke_family_after_reuse(
        self, session: AsyncSession, ctx: RequestOrigin, stored: RefreshToken
    ) -> None:
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

    # --- introspection and revocation ---------------------------------------------------

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
