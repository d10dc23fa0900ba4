"""What the sign-in flow decides: who is signed in, which scopes a person may grant an app, and
whether they already granted them (remembered consent)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.auth.authorize.repository import (
    AuthorizationCodeRepository,
    ConsentRepository,
)
from medmesh.auth.authorize.requests import (
    PROTOCOL_SCOPES,
    AuthorizationDenied,
    AuthorizationRequest,
)
from medmesh.auth.logins.service import LoginThrottled
from medmesh.auth.models import BrowserSession, Consent, User
from medmesh.auth.tokens.repository import RefreshTokenRepository
from medmesh.auth.tokens.service import TokenService
from medmesh.auth.users.repository import UserRepository
from medmesh.platform.audit import AuditRecord
from medmesh.platform.db import utcnow
from medmesh.platform.origin import RequestOrigin
from medmesh.platform.tokens import InvalidScope


class SignInFailed(Exception):
    """Wrong user name or password (the page says no more)."""

    def __repr__(self) -> str:
        return "SignInFailed()"


class SignInService:
    def __init__(self, tokens: TokenService) -> None:
        self.tokens = tokens
        self.roles = tokens.roles

    async def authenticate(
        self,
        session: AsyncSession,
        ctx: RequestOrigin,
        username: str,
        password: str,
        client_id: str | None,
    ) -> User:
        """The person whose password this is; :class:`LoginThrottled` while the account or the
        source must wait, :class:`SignInFailed` otherwise. Failures count, as at the token
        endpoint, and every attempt is audited."""
        tokens = self.tokens
        try:
            await tokens.throttle.check(session, username, ctx.ip)
        except LoginThrottled:
            await self._failed(ctx, "throttled", client_id)
            raise
        user = await tokens.users.verify_password(session, username, password)
        if user is None:
            # The request fails: release its connection before the counter's own transaction.
            await session.rollback()
            await tokens.throttle.failed(username, ctx.ip)
            await self._failed(ctx, "bad_credentials", client_id)
            raise SignInFailed()
        await tokens.throttle.succeeded(session, username)
        await tokens.audit.record(
            AuditRecord.for_origin(
                ctx,
                "auth.login",
                actor=user.id,
                client_id=client_id,
                roles=user.roles,
                details={"flow": "browser"},
            )
        )
        return user

    async def _failed(self, ctx: RequestOrigin, reason: str, client_id: str | None) -> None:
        self.tokens.metrics.login_failures.labels(reason).inc()
        await self.tokens.audit.record(
            AuditRecord.for_origin(
                ctx,
                "auth.login",
                outcome="failure",
                client_id=client_id,
                details={"reason": reason},
            )
        )

    @staticmethod
    async def user_of(session: AsyncSession, browser: BrowserSession | None) -> User | None:
        """The enabled user signed in to ``browser``, or None."""
        if browser is None or browser.user_id is None:
            return None
        user = await UserRepository(session).get(browser.user_id)
        return None if user is None or user.disabled else user

    async def grantable(
        self, session: AsyncSession, req: AuthorizationRequest, user: User
    ) -> list[str]:
        """The requested scopes this client may ask for and this person may hold, in order;
        ``invalid_scope`` when none is left."""
        held = await self.roles.scopes_of(session, user.roles)
        kept = []
        for scope in req.scope:
            try:
                if req.client.scopes.has(scope) and (scope in PROTOCOL_SCOPES or held.has(scope)):
                    kept.append(scope)
            except InvalidScope:
                continue
        if not kept:
            raise AuthorizationDenied(req, "invalid_scope", "no requested scope can be granted")
        return kept

    @staticmethod
    async def consented(
        session: AsyncSession, user: User, client_id: str, scope: list[str]
    ) -> bool:
        """True when the person granted this app every one of ``scope`` before."""
        consent = await ConsentRepository(session).get(user.id, client_id)
        return consent is not None and set(scope) <= set(consent.scope.split())

    @staticmethod
    async def remember(session: AsyncSession, user: User, client_id: str, scope: list[str]) -> None:
        await ConsentRepository(session).put(user.id, client_id, " ".join(scope))

    @staticmethod
    async def connected(session: AsyncSession, user: User) -> list[Consent]:
        """The apps the person granted access, by client id."""
        return await ConsentRepository(session).of_user(user.id)

    async def disconnect(
        self, session: AsyncSession, ctx: RequestOrigin, user: User, client_id: str
    ) -> bool:
        """Withdraw the app's access: its consent is forgotten, its refresh tokens die at once,
        and its access tokens are refused wherever revocations are synced. False when the app
        held no consent."""
        repo = ConsentRepository(session)
        if await repo.get(user.id, client_id) is None:
            return False
        await repo.delete(user.id, client_id)
        families = await AuthorizationCodeRepository(session).families(user.id, client_id)
        now = utcnow()
        refresh = RefreshTokenRepository(session)
        for family in families:
            await refresh.revoke_family(family, now)
            await self.tokens.revoker.record_revocation(session, "sid", family)
        await self.tokens.audit.record(
            AuditRecord.for_origin(
                ctx,
                "auth.app_disconnected",
                actor=user.id,
                client_id=client_id,
                details={"sessions": len(families)},
            )
        )
        return True
