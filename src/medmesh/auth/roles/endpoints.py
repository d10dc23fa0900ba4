"""Admin API of roles (scope ``auth:admin``)."""

from __future__ import annotations

from fastapi import APIRouter, Path, Response

from medmesh.auth.admin import Admin
from medmesh.auth.components import Components, Context, audit_admin_change
from medmesh.auth.models import Role
from medmesh.auth.roles.schemas import ROLE_NAME, RoleOut, RolePut
from medmesh.platform.db import SessionDep

router = APIRouter(prefix="/admin/roles", tags=["admin: roles"])


def _out(role: Role) -> RoleOut:
    return RoleOut(
        name=role.name,
        description=role.description,
        scope=role.scopes,
        builtin=role.builtin,
        updated_at=role.updated_at,
    )


@router.get("", response_model=list[RoleOut], summary="List roles")
async def list_roles(_: Admin, session: SessionDep, components: Components) -> list[RoleOut]:
    """Every role with the scopes it grants."""
    return [_out(r) for r in await components.roles.all(session)]


@router.put("/{name}", response_model=RoleOut, summary="Create or replace a role")
async def put_role(
    data: RolePut,
    admin: Admin,
    session: SessionDep,
    components: Components,
    ctx: Context,
    response: Response,
    name: str = Path(pattern=ROLE_NAME),
) -> RoleOut:
    """Sets the scopes a role grants. Tokens issued afterwards (including refreshes) follow it."""
    role, created = await components.roles.put(session, name, data)
    response.status_code = 201 if created else 200
    await audit_admin_change(
        components, ctx, admin, "auth.role_saved", "Role", name, scope=data.scope
    )
    return _out(role)


@router.delete("/{name}", status_code=204, summary="Delete a role")
async def delete_role(
    admin: Admin,
    session: SessionDep,
    components: Components,
    ctx: Context,
    name: str = Path(pattern=ROLE_NAME),
) -> Response:
    """Deletes a custom role (built-in roles stay)."""
    await components.roles.delete(session, name)
    await audit_admin_change(components, ctx, admin, "auth.role_deleted", "Role", name)
    return Response(status_code=204)
