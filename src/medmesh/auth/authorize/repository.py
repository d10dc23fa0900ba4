"""Queries of authorization codes, browser sessions and consents."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.auth.models import AuthorizationCode, BrowserSession, Consent


class AuthorizationCodeRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, code: AuthorizationCode) -> None:
        self.session.add(code)
        await self.session.flush()

    async def by_hash(self, code_hash: str) -> AuthorizationCode | None:
        return await self.session.get(AuthorizationCode, code_hash)

    async def mark_used(self, code_hash: str, now: datetime) -> bool:
        """Mark the code used; False when another request used it first."""
        result = await self.session.execute(
            update(AuthorizationCode)
            .where(AuthorizationCode.code_hash == code_hash, AuthorizationCode.used_at.is_(None))
            .values(used_at=now)
        )
        return int(getattr(result, "rowcount", 0) or 0) == 1

    async def delete_expired(self, before: datetime) -> int:
        result = await self.session.execute(
            delete(AuthorizationCode).where(AuthorizationCode.expires_at < before)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def families(self, user_id: str, client_id: str) -> list[str]:
        """The sessions the person's codes for this app started (used codes only)."""
        stmt = (
            select(AuthorizationCode.family_id)
            .where(
                AuthorizationCode.user_id == user_id,
                AuthorizationCode.client_id == client_id,
                AuthorizationCode.used_at.is_not(None),
            )
            .distinct()
        )
        return list((await self.session.scalars(stmt)).all())


class BrowserSessionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, id_hash: str) -> BrowserSession | None:
        return await self.session.get(BrowserSession, id_hash)

    async def add(self, row: BrowserSession) -> None:
        self.session.add(row)
        await self.session.flush()

    async def delete(self, row: BrowserSession) -> None:
        await self.session.delete(row)
        await self.session.flush()

    async def delete_expired(self, now: datetime) -> int:
        result = await self.session.execute(
            delete(BrowserSession).where(BrowserSession.expires_at < now)
        )
        return int(getattr(result, "rowcount", 0) or 0)


class ConsentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, user_id: str, client_id: str) -> Consent | None:
        return await self.session.get(Consent, (user_id, client_id))

    async def put(self, user_id: str, client_id: str, scope: str) -> None:
        row = await self.get(user_id, client_id)
        if row is None:
            self.session.add(Consent(user_id=user_id, client_id=client_id, scope=scope))
        else:
            row.scope = scope
        await self.session.flush()

    async def delete(self, user_id: str, client_id: str) -> None:
        await self.session.execute(
            delete(Consent).where(Consent.user_id == user_id, Consent.client_id == client_id)
        )

    async def of_user(self, user_id: str) -> list[Consent]:
        stmt = select(Consent).where(Consent.user_id == user_id).order_by(Consent.client_id)
        return list((await self.session.scalars(stmt)).all())
