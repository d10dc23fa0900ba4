"""Admin API of users (scope ``auth:admin``)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from medmesh.auth.admin import Admin
from medmesh.auth.components import Components, Context, audit_admin_change
from medmesh.auth.users.schemas import UserCreate, UserOut, UserPage, UserUpdate
from medmesh.platform.db import SessionDep
from medmesh.platform.paging import KeysetQuery, next_after

router = APIRouter(prefix="/admin/users", tags=["admin: users"])


@router.post("", response_model=UserOut, status_code=201, summary="Create a user")
async def create_user(
    data: UserCreate, admin: Admin, session: SessionDep, components: Components, ctx: Context
) -> UserOut:
    """Creates a user with an argon2id-hashed password and roles (which must exist). A user with the
    `patient` role needs the `patient_id` their tokens are bound to."""
    user = await components.users.create(session, data)
    await audit_admin_change(
        components, ctx, admin, "auth.user_created", "User", user.id, roles=user.roles
    )
    return UserOut.model_validate(user)


@router.get("", response_model=UserPage, summary="List users")
async def list_users(
    _: Admin,
    session: SessionDep,
    components: Components,
    page: KeysetQuery,
) -> UserPage:
    """Users ordered by username; pass `next_after` as `after` for the next page."""
    users = await components.users.page(session, page.after, page.limit)
    data = [UserOut.model_validate(u) for u in users]
    return UserPage(data=data, next_after=next_after(data, page.limit, lambda u: u.username))


@router.get("/{user_id}", response_model=UserOut, summary="Get a user")
async def get_user(user_id: str, _: Admin, session: SessionDep, components: Components) -> UserOut:
    """One user (never the password hash)."""
    return UserOut.model_validate(await components.users.get(session, user_id))


@router.patch("/{user_id}", response_model=UserOut, summary="Change a user")
async def update_user(
    user_id: str,
    data: UserUpdate,
    admin: Admin,
    session: SessionDep,
    components: Components,
    ctx: Context,
) -> UserOut:
    """Changes roles, password, patient binding or the disabled flag. Disabling a user revokes every
    token issued to them so far (access tokens too, at every service within seconds; enabling
    them again does not bring those back); changing the password revokes their refresh tokens."""
    user = await components.users.update(session, user_id, data)
    if data.disabled:
        await components.tokens.revoker.revoke_user(session, user_id)
    elif data.password is not None:
        await components.tokens.revoker.revoke_user_sessions(session, user_id)
    await audit_admin_change(
        components,
        ctx,
        admin,
        "auth.user_updated",
        "User",
        user_id,
        fields=sorted(data.model_dump(exclude_unset=True)),
    )
    return UserOut.model_validate(user)


@router.post("/{user_id}/unlock", status_code=204, summary="Lift a sign-in lockout")
async def unlock_user(
    user_id: str, admin: Admin, session: SessionDep, components: Components, ctx: Context
) -> Response:
    """Clears the failed sign-in counter of the user's account."""
    user = await components.users.get(session, user_id)
    await components.throttle.unlock(session, user.username)
    await audit_admin_change(components, ctx, admin, "auth.user_unlocked", "User", user_id)
    return Response(status_code=204)


@router.delete("/{user_id}", status_code=204, summary="Delete a user")
async def delete_user(
    user_id: str, admin: Admin, session: SessionDep, components: Components, ctx: Context
) -> Response:
    """Deletes the user and their refresh tokens; their access tokens are refused from now on."""
    await components.users.delete(session, user_id)
    await components.tokens.revoker.revoke_user(session, user_id)
    await audit_admin_change(components, ctx, admin, "auth.user_deleted", "User", user_id)
    return Response(status_code=204)
