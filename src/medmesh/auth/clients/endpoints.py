"""Admin API of OAuth clients (scope ``auth:admin``)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from medmesh.auth.admin import Admin
from medmesh.auth.clients.schemas import (
    ClientCreate,
    ClientOut,
    ClientPage,
    ClientUpdate,
    ClientWithSecret,
)
from medmesh.auth.components import Components, Context, audit_admin_change
from medmesh.platform.db import SessionDep
from medmesh.platform.paging import KeysetQuery, next_after

router = APIRouter(prefix="/admin/clients", tags=["admin: clients"])


def _with_secret(client: object, secret: str | None) -> ClientWithSecret:
    out = ClientOut.model_validate(client)
    return ClientWithSecret(**out.model_dump(), client_secret=secret)


@router.post("", response_model=ClientWithSecret, status_code=201, summary="Register a client")
async def create_client(
    data: ClientCreate, admin: Admin, session: SessionDep, components: Components, ctx: Context
) -> ClientWithSecret:
    """Registers a confidential client. The response carries its secret once; only a hash is kept.
    The password grant is off unless `grant_types` lists it. A client with
    `token_endpoint_auth_method: private_key_jwt` has no secret: it signs client assertions
    (SMART Backend Services) with a key of its `jwks` or `jwks_uri`."""
    client, secret = await components.clients.create(session, data)
    await audit_admin_change(
        components,
        ctx,
        admin,
        "auth.client_created",
        "Client",
        client.client_id,
        grant_types=client.grant_types,
        token_endpoint_auth_method=client.token_endpoint_auth_method,
    )
    return _with_secret(client, secret)


@router.get("", response_model=ClientPage, summary="List clients")
async def list_clients(
    _: Admin,
    session: SessionDep,
    components: Components,
    page: KeysetQuery,
) -> ClientPage:
    """Clients ordered by id; pass `next_after` as `after` for the next page."""
    clients = await components.clients.page(session, page.after, page.limit)
    data = [ClientOut.model_validate(c) for c in clients]
    return ClientPage(data=data, next_after=next_after(data, page.limit, lambda c: c.client_id))


@router.get("/{client_id}", response_model=ClientOut, summary="Get a client")
async def get_client(
    client_id: str, _: Admin, session: SessionDep, components: Components
) -> ClientOut:
    """One client (never its secret)."""
    return ClientOut.model_validate(await components.clients.get(session, client_id))


@router.patch("/{client_id}", response_model=ClientOut, summary="Change a client")
async def update_client(
    client_id: str,
    data: ClientUpdate,
    admin: Admin,
    session: SessionDep,
    components: Components,
    ctx: Context,
) -> ClientOut:
    """Changes grants, scopes, roles, audiences, token lifetime, the disabled flag or (a
    `private_key_jwt` client rotating its keys) `jwks` or `jwks_uri`. Disabling a
    client revokes every token issued to it so far (at every service within seconds). A field left
    out keeps its value; `access_token_ttl_seconds: null` restores the server's default lifetime,
    null for any other field is a 400."""
    client = await components.clients.update(session, client_id, data)
    if data.disabled:
        await components.tokens.revoker.revoke_client(session, client_id)
    await audit_admin_change(
        components,
        ctx,
        admin,
        "auth.client_updated",
        "Client",
        client_id,
        fields=sorted(data.model_dump(exclude_unset=True)),
    )
    return ClientOut.model_validate(client)


@router.post(
    "/{client_id}/secret", response_model=ClientWithSecret, summary="Rotate a client's secret"
)
async def rotate_secret(
    client_id: str, admin: Admin, session: SessionDep, components: Components, ctx: Context
) -> ClientWithSecret:
    """Issues a new secret (shown once); the old one stops working at once."""
    client, secret = await components.clients.rotate_secret(session, client_id)
    await audit_admin_change(
        components, ctx, admin, "auth.client_secret_rotated", "Client", client_id
    )
    return _with_secret(client, secret)


@router.delete("/{client_id}", status_code=204, summary="Delete a client")
async def delete_client(
    client_id: str, admin: Admin, session: SessionDep, components: Components, ctx: Context
) -> Response:
    """Deletes the client and its refresh tokens; its access tokens are refused from now on."""
    await components.clients.delete(session, client_id)
    await components.tokens.revoker.revoke_client(session, client_id)
    await audit_admin_change(components, ctx, admin, "auth.client_deleted", "Client", client_id)
    return Response(status_code=204)
