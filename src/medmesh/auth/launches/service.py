"""EHR launch contexts: an EHR mints a ``launch`` value for one app with the patient and
encounter it has open; the app passes it to ``/oauth/authorize`` with the ``launch`` scope, and
the tokens of that launch carry the context. A value is short-lived, used once (by the code it
produced) and good only for the app it was minted for; only its SHA-256 is stored."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.auth.clients.service import ClientView
from medmesh.auth.launches.repository import LaunchContextRepository
from medmesh.auth.launches.schemas import LaunchCreate
from medmesh.auth.models import LaunchContext
from medmesh.platform.db import Database, utcnow
from medmesh.platform.errors import Unprocessable

LAUNCH_PREFIX = "mmla_"
#: The scope a client needs to be launched from an EHR, and to ask for the context.
LAUNCH_SCOPE = "launch"


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class LaunchService:
    def __init__(self, database: Database, ttl_seconds: int) -> None:
        self.database = database
        self.ttl_seconds = ttl_seconds

    async def mint(
        self, session: AsyncSession, client: ClientView, data: LaunchCreate, created_by: str
    ) -> tuple[str, LaunchContext]:
        """A new launch value for ``client`` (returned once) and its stored context."""
        if "authorization_code" not in client.grant_types or not client.redirect_uris:
            raise Unprocessable("this client does not sign people in", code="not_an_app")
        if not client.scopes.has(LAUNCH_SCOPE):
            raise Unprocessable(
                "this client may not ask for the launch scope", code="launch_not_allowed"
            )
        value = LAUNCH_PREFIX + secrets.token_urlsafe(32)
        now = utcnow()
        row = LaunchContext(
            value_hash=_hash(value),
            client_id=client.client_id,
            patient=data.patient,
            encounter=data.encounter,
            need_patient_banner=data.need_patient_banner,
            created_by=created_by[:64],
            created_at=now,
            expires_at=now + timedelta(seconds=self.ttl_seconds),
        )
        await LaunchContextRepository(session).add(row)
        return value, row

    @staticmethod
    async def find(session: AsyncSession, client_id: str, value: str) -> LaunchContext | None:
        """The live, unused context of ``value`` minted for ``client_id``; None otherwise (an
        unknown, expired, used and another app's value look the same)."""
        if not value.startswith(LAUNCH_PREFIX) or len(value) > 100:
            return None
        row = await LaunchContextRepository(session).by_hash(_hash(value))
        if (
            row is None
            or row.client_id != client_id
            or row.used_at is not None
            or row.expires_at <= utcnow()
        ):
            return None
        return row

    @staticmethod
    async def use(session: AsyncSession, row: LaunchContext) -> bool:
        """Spend the launch (its code is being issued); False when it was spent already."""
        return await LaunchContextRepository(session).mark_used(row.value_hash, utcnow())

    async def forget_expired(self) -> int:
        """Delete expired launch contexts (the cleanup job)."""
        async with self.database.write_lock, self.database.unit_of_work() as session:
            return await LaunchContextRepository(session).delete_expired(utcnow())
