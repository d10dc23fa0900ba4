"""What the sign-in flow decides: who is signed in, which scopes a person may grant an app, and
whether they already granted them (remembered consent)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.auth.authorize.repository import ConsentRepository
from medmesh.auth.authorize.requests import (
    PROTOCOL_SCOPES,
    AuthorizationDenied,
    AuthorizationRequest,
)
from medmesh.auth.models import BrowserSession, User
from medmesh.auth.roles.service import RoleService
from medmesh.auth.users.repository import UserRepository
from medmesh.platform.tokens import InvalidScope


class SignInService:
    def __init__(self, roles: RoleService) -> None:
        self.roles = roles

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
