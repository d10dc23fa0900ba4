"""Users: accounts with argon2id passwords and roles."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.auth.models import User
from medmesh.auth.roles.service import RoleService
from medmesh.auth.users.passwords import PasswordHasher
from medmesh.auth.users.repository import UserRepository
from medmesh.auth.users.schemas import UserCreate, UserUpdate
from medmesh.platform.db import utcnow
from medmesh.platform.errors import BadRequest, Conflict, NotFound


def normalize_username(username: str) -> str:
    return username.strip().lower()


class UserService:
    def __init__(self, hasher: PasswordHasher, roles: RoleService) -> None:
        self.hasher = hasher
        self.roles = roles

    async def create(self, session: AsyncSession, data: UserCreate) -> User:
        repo = UserRepository(session)
        username = normalize_username(data.username)
        if await repo.by_username(username) is not None:
            raise Conflict("a user with this username exists", code="user_exists")
        await self.roles.require_existing(session, data.roles)
        self._check_patient_binding(data.roles, data.patient_id)
        user = User(
            id=uuid.uuid4().hex,
            username=username,
            password_hash=await self.hasher.hash(data.password),
            roles=list(dict.fromkeys(data.roles)),
            patient_id=data.patient_id,
            fhir_user=data.fhir_user or (f"Patient/{data.patient_id}" if data.patient_id else None),
        )
        await repo.add(user)
        return user

    async def get(self, session: AsyncSession, user_id: str) -> User:
        user = await UserRepository(session).get(user_id)
        if user is None:
            raise NotFound("no such user", code="user_not_found")
        return user

    @staticmethod
    async def get_or_none(session: AsyncSession, user_id: str) -> User | None:
        return await UserRepository(session).get(user_id)

    async def page(self, session: AsyncSession, after: str | None, limit: int) -> list[User]:
        return list(await UserRepository(session).page(after=after, limit=limit))

    async def update(self, session: AsyncSession, user_id: str, data: UserUpdate) -> User:
        user = await self.get(session, user_id)
        changes = data.model_dump(exclude_unset=True)
        if "roles" in changes and changes["roles"] is not None:
            await self.roles.require_existing(session, changes["roles"])
            user.roles = list(dict.fromkeys(changes["roles"]))
        if "patient_id" in changes:
            user.patient_id = changes["patient_id"]
        if "fhir_user" in changes:
            user.fhir_user = changes["fhir_user"]
        if changes.get("disabled") is not None:
            user.disabled = bool(changes["disabled"])
        if changes.get("password") is not None:
            user.password_hash = await self.hasher.hash(changes["password"])
            user.password_changed_at = utcnow()
        self._check_patient_binding(user.roles, user.patient_id)
        await session.flush()
        return user

    async def delete(self, session: AsyncSession, user_id: str) -> None:
        user = await self.get(session, user_id)
        await UserRepository(session).delete(user)

    async def verify_password(
        self, session: AsyncSession, username: str, password: str
    ) -> User | None:
        """The enabled user whose password this is, else None (timing does not tell which)."""
        user = await UserRepository(session).by_username(normalize_username(username))
        if user is None:
            await self.hasher.burn(password)
            return None
        if not await self.hasher.verify(user.password_hash, password):
            return None
        if user.disabled:
            return None
        if self.hasher.needs_rehash(user.password_hash):
            user.password_hash = await self.hasher.hash(password)
            await session.flush()
        return user

    @staticmethod
    def _check_patient_binding(roles: list[str], patient_id: str | None) -> None:
        if "patient" in roles and not patient_id:
            raise BadRequest(
                "a user with the patient role needs a patient_id", code="patient_id_required"
            )
