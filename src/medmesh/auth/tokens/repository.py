"""Queries of the token domain: refresh tokens and revocations."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.auth.models import RefreshToken, Revocation
from medmesh.platform.paging import keyset_page


def _rowcount(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


class RefreshTokenRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, token: RefreshToken) -> None:
        self.session.add(token)
        await self.session.flush()

    async def by_hash(self, token_hash: str) -> RefreshToken | None:
        token: RefreshToken | None = await self.session.scalar(
            select(RefreshToken).where(RefreshToken.token_hash == token_hash)
        )
        return token

    async def mark_used(self, token_id: str, now: datetime) -> bool:
        """Atomically mark an unused token used; False when it was used meanwhile."""
        result = await self.session.execute(
            update(RefreshToken)
            .where(
                RefreshToken.id == token_id,
                RefreshToken.used_at.is_(None),
                RefreshToken.revoked_at.is_(None),
            )
            .values(used_at=now)
        )
        return _rowcount(result) == 1

    async def revoke_family(self, family_id: str, now: datetime) -> int:
        result = await self.session.execute(
            update(RefreshToken)
            .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        return _rowcount(result)

    async def revoke_for_browser_session(self, browser_session: str, now: datetime) -> int:
        """Revoke the ``online_access`` tokens of a sign-in session that ended."""
        result = await self.session.execute(
            update(RefreshToken)
            .where(
                RefreshToken.browser_session == browser_session,
                RefreshToken.revoked_at.is_(None),
            )
            .values(revoked_at=now)
        )
        return _rowcount(result)

    async def revoke_for_user(self, user_id: str, now: datetime) -> int:
        result = await self.session.execute(
            update(RefreshToken)
            .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        return _rowcount(result)

    async def revoke_for_client(self, client_id: str, now: datetime) -> int:
        result = await self.session.execute(
            update(RefreshToken)
            .where(RefreshToken.client_id == client_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        return _rowcount(result)

    async def delete_expired(self, now: datetime) -> int:
        result = await self.session.execute(
            delete(RefreshToken).where(RefreshToken.expires_at < now)
        )
        return _rowcount(result)


class RevocationRepository:
    """The ``revocations`` rows (see ``models.Revocation``)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(
        self, kind: str, value: str, revoked_at: datetime, keep_until: datetime
    ) -> Revocation:
        row = Revocation(kind=kind, value=value, revoked_at=revoked_at, keep_until=keep_until)
        self.session.add(row)
        await self.session.flush()
        return row

    async def since(self, after: datetime | None, now: datetime) -> Sequence[Revocation]:
        """The rows still kept, revoked at or after ``after`` (all of them without it)."""
        stmt = select(Revocation).where(Revocation.keep_until > now)
        if after is not None:
            stmt = stmt.where(Revocation.revoked_at >= after)
        return (await self.session.scalars(stmt.order_by(Revocation.revoked_at))).all()

    async def page(
        self, after: tuple[datetime, int] | None, now: datetime, limit: int
    ) -> Sequence[Revocation]:
        """Up to ``limit`` rows still kept, in (revoked_at, id) order after ``after``."""
        stmt = keyset_page(
            select(Revocation).where(Revocation.keep_until > now),
            [Revocation.revoked_at, Revocation.id],
            after,
            limit,
        )
        return (await self.session.scalars(stmt)).all()

    async def delete_expired(self, now: datetime) -> int:
        result = await self.session.execute(delete(Revocation).where(Revocation.keep_until < now))
        return _rowcount(result)
