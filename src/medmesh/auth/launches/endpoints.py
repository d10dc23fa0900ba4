"""``POST /ehr/launches``: an EHR mints a launch value for an app (SMART EHR launch)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from medmesh.auth.components import Components, Context, audit_admin_change
from medmesh.auth.launches.schemas import LaunchCreate, LaunchOut
from medmesh.platform.db import SessionDep
from medmesh.platform.errors import NotFound
from medmesh.platform.tokens import Principal, RequireScopes

router = APIRouter(prefix="/ehr", tags=["ehr launch"])
#: An admin, or an EHR's client or user holding ``auth:launch``.
Launcher = Annotated[Principal, Depends(RequireScopes("auth:admin", "auth:launch", any_of=True))]


@router.post(
    "/launches",
    response_model=LaunchOut,
    status_code=201,
    responses={
        404: {"description": "no such client"},
        422: {"description": "the client is not an app that may be launched (`launch` scope)"},
    },
    summary="Mint a launch value (EHR launch)",
)
async def mint_launch(
    data: LaunchCreate,
    launcher: Launcher,
    session: SessionDep,
    components: Components,
    ctx: Context,
) -> LaunchOut:
    """Puts up the patient and encounter an EHR has open for one app. The EHR opens the app's
    launch URL with `launch` (this value) and `iss`; the app sends it to `/oauth/authorize` with
    the `launch` scope, and its token response carries `patient`, `encounter` and
    `need_patient_banner`. The value expires after `expires_in` seconds, works once and only for
    this app. Needs `auth:admin` or `auth:launch`."""
    client = await components.clients.find(lambda: session, data.client_id)
    if client is None or client.disabled:
        raise NotFound("no such client", code="client_not_found")
    value, row = await components.launches.mint(session, client, data, launcher.sub)
    await audit_admin_change(
        components,
        ctx,
        launcher,
        "auth.launch_minted",
        "Client",
        client.client_id,
        encounter_in_context=row.encounter is not None,
    )
    return LaunchOut(
        launch=value,
        client_id=client.client_id,
        patient=row.patient,
        encounter=row.encounter,
        need_patient_banner=row.need_patient_banner,
        expires_in=components.launches.ttl_seconds,
    )
