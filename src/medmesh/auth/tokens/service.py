"""The grants of the token endpoint.

- client_credentials: a service acting for itself; no refresh token (RFC 6749 §4.4.3).
- password: first-party apps and the CLI, only for clients that enable it; login
  protection applies per account and per source.
- refresh_token: rotation on every use; presenting a used refresh token again
  revokes its whole family (the session), because either the client or an
  attacker holds a stolen copy (OAuth 2.0 Security BCP §4.14).

Signing is :class:`~medmesh.auth.tokens.issuing.TokenIssuer`'s; introspection, revocation and
cleanup are :class:`~medmesh.auth.tokens.revoking.TokenRevoker`'s.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.auth.authorize.repository import BrowserSessionRepository
from medmesh.auth.authorize.requests import PROTOCOL_SCOPES
from medmesh.auth.clients.service import ClientView
from medmesh.auth.config import AuthSettings
from medmesh.auth.keys.service import SigningKeyService
from medmesh.auth.logins.service import LoginThrottle, LoginThrottled
from medmesh.auth.metrics import AuthMetrics
from medmesh.auth.models import User
from medmesh.auth.oauth import InvalidGrant, UnauthorizedClient
from medmesh.auth.roles.service import RoleService
from medmesh.auth.tokens.issuing import IssuedTokens, TokenIssuer, covered, hash_refresh_token
from medmesh.auth.tokens.repository import RefreshTokenRepository
from medmesh.auth.tokens.revocations import RevocationCache
from medmesh.auth.tokens.revoking import TokenRevoker
from medmesh.auth.tokens.verification import IssuedTokenValidator
from medmesh.auth.users.repository import UserRepository
from medmesh.auth.users.service import UserService
from medmesh.platform.audit import AuditRecord, AuditTrail
from medmesh.platform.db import Database, utcnow
from medmesh.platform.origin import RequestOrigin
from medmesh.platform.tokens import ScopeSet, narrow


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
        self.audit = audit
        self.metrics = metrics
        self.issuer = TokenIssuer(settings, keys)
        self.revoker = TokenRevoker(
            database, revocations, IssuedTokenValidator(keys, settings.issuer), audit
        )
        grants = ("client_credentials", "password", "refresh_token", "authorization_code")
        self._issued = {grant: metrics.tokens_issued.labels(grant) for grant in grants}

    async def _audit(
        self, ctx: RequestOrigin, action: str, outcome: str = "success", **fields: Any
    ) -> None:
        await self.audit.record(AuditRecord.for_origin(ctx, action, outcome=outcome, **fields))

    @staticmethod
    def _require_grant(client: ClientView, grant: str) -> None:
        if grant not in client.grant_types:
            raise UnauthorizedClient(f"this client may not use the {grant} grant")

    async def client_credentials(
        self, ctx: RequestOrigin, client: ClientView, scope: str | None, audience: str | None
    ) -> IssuedTokens:
        self._require_grant(client, "client_credentials")
        granted = narrow(scope or "", client.scopes)
        audiences = self.issuer.audiences(client, audience)
        token, ttl = self.issuer.issue_access_token(
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

    async def _user_scope(
        self, session: AsyncSession, client: ClientView, user: User, requested: str | None
    ) -> str:
        user_scopes = await self.roles.scopes_of(session, user.roles)
        if requested:
            return narrow(narrow(requested, user_scopes), client.scopes)
        return covered(str(user_scopes), client.scopes)

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
        issued = await self.issuer.user_tokens(
            session, client, user, granted, self.issuer.audiences(client, audience), None
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

    @staticmethod
    async def _still_signed_in(
        session: AsyncSession, browser_session: str, user_id: str | None
    ) -> bool:
        """An ``online_access`` token lives as long as the sign-in it was granted in (SMART App
        Launch: usable while the person remains online); signing out or its expiry ends it."""
        browser = await BrowserSessionRepository(session).get(browser_session)
        return browser is not None and browser.user_id == user_id and browser.expires_at > utcnow()

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
        if stored.browser_session is not None and not await self._still_signed_in(
            session, stored.browser_session, stored.user_id
        ):
            raise InvalidGrant("the sign-in session of this online_access token has ended")
        if stored.used_at is not None or not await repo.mark_used(stored.id, now):
            await self.revoker.revoke_family_after_reuse(session, ctx, stored)
            raise InvalidGrant("refresh token was already used; the session has been revoked")
        user = await UserRepository(session).get(stored.user_id) if stored.user_id else None
        if user is None or user.disabled:
            raise InvalidGrant("the user of this refresh token is no longer active")
        held = await self.roles.scopes_of(session, user.roles)
        # What the person granted an app beyond their role (offline_access, launch context)
        # stays granted for the session; the data scopes follow the role as it is now.
        protocol = [item for item in stored.scope.split() if item in PROTOCOL_SCOPES]
        allowed = covered(stored.scope, ScopeSet([*held, *protocol]))
        granted = narrow(scope, ScopeSet(allowed)) if scope else allowed
        issued = await self.issuer.user_tokens(
            session,
            client,
            user,
            granted,
            list(stored.audiences),
            stored.family_id,
            patient=stored.patient,
            browser_session=stored.browser_session,
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
