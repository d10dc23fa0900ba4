"""The auth-service's domain services, built once per app and reached through a dependency."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from medmesh.auth.clients.service import ClientService
from medmesh.auth.keys.service import SigningKeyService
from medmesh.auth.logins.service import LoginThrottle
from medmesh.auth.roles.service import RoleService
from medmesh.auth.tokens.revocations import RevocationCache
from medmesh.auth.tokens.service import RequestContext, TokenService
from medmesh.auth.users.service import UserService
from medmesh.platform.audit import AuditRecord, AuditTrail
from medmesh.platform.logging import request_id_var
from medmesh.platform.tokens import Principal
from medmesh.platform.web import RateLimiter, client_ip


@dataclass
class AuthComponents:
    keys: SigningKeyService
    clients: ClientService
    users: UserService
    roles: RoleService
    throttle: LoginThrottle
    revocations: RevocationCache
    tokens: TokenService
    audit: AuditTrail
    token_limiter: RateLimiter


def components_of(request: Request) -> AuthComponents:
    """The app's domain services (the OAuth endpoints call this directly: see tokens/endpoints)."""
    components: AuthComponents = request.app.state.auth
    return components


def context_of(request: Request) -> RequestContext:
    """Where the request came from."""
    return RequestContext(ip=client_ip(request), request_id=request_id_var.get())


async def get_components(request: Request) -> AuthComponents:
    return components_of(request)


Components = Annotated[AuthComponents, Depends(get_components)]


async def request_context(request: Request) -> RequestContext:
    return context_of(request)


Context = Annotated[RequestContext, Depends(request_context)]


async def audit_admin_change(
    components: AuthComponents,
    ctx: RequestContext,
    principal: Principal,
    action: str,
    resource_type: str,
    resource_id: str,
    **details: object,
) -> None:
    """Every admin change is audited: who changed what, from where."""
    await components.audit.record(
        AuditRecord(
            action=action,
            actor=principal.sub,
            client_id=principal.client_id,
            roles=sorted(principal.roles),
            resource_type=resource_type,
            resource_id=resource_id,
            source_ip=ctx.ip,
            request_id=ctx.request_id,
            details=dict(details),
        )
    )
