"""Queries of the signing-key domain."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.auth.models import SigningKeyRecord


class SigningKeyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def publishable(self, now: datetime) -> Sequence[SigningKeyRecord]:
        """Active keys and retired keys whose tokens may still be alive, newest first."""
        stmt = (
            select(SigningKeyRecord)
            .where(
                or_(
                    SigningKeyRecord.status == "active",
                    SigningKeyRecord.publish_until > now,
                )
            )
            .order_by(SigningKeyRecord.created_at.desc())
        )
        return (await self.session.scalars(stmt)).all()

    async def all(self) -> Sequence[SigningKeyRecord]:
        stmt = select(SigningKeyRecord).order_by(SigningKeyRecord.created_at.desc())
        return (await self.session.scalars(stmt)).all()

    async def add(self, record: SigningKeyRecord) -> None:
        self.session.add(record)
        await self.session.flush()

    async def retire_active(self, now: datetime, publish_until: datetime, keep: str) -> list[str]:
        """Retire every active key but ``keep``; return the retired kids."""
        stmt = select(SigningKeyRecord.kid).where(
            SigningKeyRecord.status == "active", SigningKeyRecord.kid != keep
        )
        kids = list((await self.session.scalars(stmt)).all())
        if kids:
            await self.session.execute(
                update(SigningKeyRecord)
                .where(SigningKeyRecord.kid.in_(kids))
                .values(status="retired", retired_at=now, publish_until=publish_until)
            )
        return kids
