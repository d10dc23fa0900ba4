"""Roles: named scope sets. A user's (or service client's) scopes are the union of its roles'."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.auth.models import Role
from medmesh.auth.roles.defaults import BUILTIN_ROLES
from medmesh.auth.roles.repository import RoleRepository
from medmesh.auth.roles.schemas import RolePut
from medmesh.platform.errors import BadRequest, Conflict, NotFound
from medmesh.platform.tokens import ScopeSet


class RoleService:
    async def ensure_builtin(self, session: AsyncSession) -> None:
        """Create the built-in roles that are missing (existing ones are left as edited)."""
        repo = RoleRepository(session)
        for name, (description, scopes) in BUILTIN_ROLES.items():
            if await repo.get(name) is None:
                await repo.add(
                    Role(name=name, description=description, scopes=scopes, builtin=True)
                )

    async def all(self, session: AsyncSession) -> list[Role]:
        return list(await RoleRepository(session).all())

    async def get(self, session: AsyncSession, name: str) -> Role:
        role = await RoleRepository(session).get(name)
        if role is None:
            raise NotFound("no such role", code="role_not_found")
        return role

    async def put(self, session: AsyncSession, name: str, data: RolePut) -> tuple[Role, bool]:
        """Create or replace a role; returns it and whether it was created."""
        ScopeSet(data.scope)
        repo = RoleRepository(session)
        role = await repo.get(name)
        if role is None:
            role = Role(name=name, description=data.description, scopes=data.scope, builtin=False)
            await repo.add(role)
            return role, True
        role.description = data.description
        role.scopes = data.scope
        await session.flush()
        return role, False

    async def delete(self, session: AsyncSession, name: str) -> None:
        role = await self.get(session, name)
        if role.builtin:
            raise Conflict("built-in roles cannot be deleted", code="role_builtin")
        await RoleRepository(session).delete(role)

    async def require_existing(self, session: AsyncSession, names: Iterable[str]) -> None:
        wanted = set(names)
        found = {r.name for r in await RoleRepository(session).named(wanted)}
        missing = sorted(wanted - found)
        if missing:
            raise BadRequest(f"unknown roles: {', '.join(missing)}", code="unknown_role")

    async def scopes_of(self, session: AsyncSession, names: Iterable[str]) -> ScopeSet:
        roles = await RoleRepository(session).named(names)
        return ScopeSet(" ".join(r.scopes for r in roles))
