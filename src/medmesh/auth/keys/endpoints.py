"""Admin API of signing keys (scope ``auth:admin``)."""

from __future__ import annotations

from fastapi import APIRouter

from medmesh.auth.admin import Admin
from medmesh.auth.components import Components, Context, audit_admin_change
from medmesh.auth.keys.schemas import SigningKeyOut
from medmesh.platform.db import SessionDep

router = APIRouter(prefix="/admin/keys", tags=["admin: keys"])


def _out(record: object) -> SigningKeyOut:
    return SigningKeyOut.model_validate(record, from_attributes=True)


@router.get("", response_model=list[SigningKeyOut], summary="List signing keys")
async def list_keys(_: Admin, session: SessionDep, components: Components) -> list[SigningKeyOut]:
    """Every signing key, newest first, with its status (active or retired) and publication window."""
    return [_out(r) for r in await components.keys.list_keys(session)]


@router.post(
    "/rotate", response_model=SigningKeyOut, status_code=201, summary="Rotate the signing key"
)
async def rotate(
    admin: Admin, session: SessionDep, components: Components, ctx: Context
) -> SigningKeyOut:
    """Creates a new active key. The previous key stays in the JWKS until every token it signed
    has expired, so nothing in flight breaks."""
    record = await components.keys.rotate(session)
    await audit_admin_change(components, ctx, admin, "auth.key_rotated", "SigningKey", record.kid)
    return _out(record)
