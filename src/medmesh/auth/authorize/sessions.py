"""Browser sessions of the sign-in pages: an opaque cookie, a CSRF token bound to it.

A session starts before sign-in, so that the login form already carries a CSRF token and a form
posted without the cookie is refused. Signing in replaces the session id (no fixation)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from medmesh.auth.authorize.repository import BrowserSessionRepository
from medmesh.auth.config import AuthSettings
from medmesh.auth.models import BrowserSession
from medmesh.auth.tokens.repository import RefreshTokenRepository
from medmesh.platform.db import utcnow

COOKIE = "mm_signin"
COOKIE_PATH = "/oauth"


class FormRefused(Exception):
    """A page form without a valid session cookie or CSRF token."""

    def __repr__(self) -> str:
        return "FormRefused()"


def set_session_cookie(response: Response, cookie: str, settings: AuthSettings) -> Response:
    """Give the browser its session: HttpOnly, SameSite=Lax, Secure outside development."""
    response.set_cookie(
        COOKIE,
        cookie,
        max_age=settings.browser_session_ttl_seconds,
        path=COOKIE_PATH,
        secure=settings.environment != "development",
        httponly=True,
        samesite="lax",
    )
    return response


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class BrowserSessions:
    def __init__(self, ttl_seconds: int) -> None:
        self.ttl = timedelta(seconds=ttl_seconds)

    async def current(self, session: AsyncSession, cookie: str | None) -> BrowserSession | None:
        """The live session the cookie names, or None."""
        if not cookie or len(cookie) > 100:
            return None
        row = await BrowserSessionRepository(session).get(_hash(cookie))
        if row is None or row.expires_at <= utcnow():
            return None
        return row

    async def start(
        self, session: AsyncSession, user_id: str | None = None
    ) -> tuple[str, BrowserSession]:
        """A new session; returns the cookie value (only its hash is stored) and the row."""
        cookie = secrets.token_urlsafe(32)
        now = utcnow()
        row = BrowserSession(
            id_hash=_hash(cookie),
            csrf_token=secrets.token_urlsafe(32),
            user_id=user_id,
            auth_time=now if user_id else None,
            created_at=now,
            expires_at=now + self.ttl,
        )
        await BrowserSessionRepository(session).add(row)
        return cookie, row

    async def checked(
        self, session: AsyncSession, cookie: str | None, csrf_token: str | None
    ) -> BrowserSession:
        """The session of a posted form, whose CSRF token must match; else :class:`FormRefused`."""
        row = await self.current(session, cookie)
        if row is None or not csrf_token:
            raise FormRefused()
        if not hmac.compare_digest(row.csrf_token.encode(), csrf_token.encode()):
            raise FormRefused()
        return row

    async def sign_in(
        self, session: AsyncSession, old: BrowserSession, user_id: str
    ) -> tuple[str, BrowserSession]:
        """Replace the anonymous session by a signed-in one (a new id and CSRF token)."""
        await BrowserSessionRepository(session).delete(old)
        return await self.start(session, user_id)

    async def end(self, session: AsyncSession, row: BrowserSession) -> None:
        """Sign out: the session ends, and with it its ``online_access`` refresh tokens."""
        await RefreshTokenRepository(session).revoke_for_browser_session(row.id_hash, utcnow())
        await BrowserSessionRepository(session).delete(row)
