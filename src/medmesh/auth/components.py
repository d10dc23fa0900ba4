"""The auth-service's domain services, built once per app and reached through a dependency,
its typed app state, and where a request came from."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Annotated

from fastapi import Depends, Request

from medmesh.auth.authorize.codes import AuthorizationCodes
from medmesh.auth.authorize.patients import PatientAccess
from medmesh.auth.authorize.service import SignInService
from medmesh.auth.authorize.sessions import BrowserSessions
from medmesh.auth.clients.assertions import ClientAssertionVerifier
from medmesh.auth.clients.service import ClientService
from medmesh.auth.config import AuthSettings
from medmesh.auth.keys.service import SigningKeyService
from medmesh.auth.launches.service import LaunchService
from medmesh.auth.logins.service import LoginThrottle
from medmesh.auth.registration.service import RegistrationService
from medmesh.auth.roles.service import RoleService
from medmesh.auth.tokens.revocations import RevocationCache
from medmesh.auth.tokens.service import TokenService
from medmesh.auth.users.service import UserService
from medmesh.platform.audit import AuditRecord, AuditTrail
from medmesh.platform.origin import RequestOrigin
from medmesh.platform.state import PlatformState
from medmesh.platform.tokens import Principal
from medmesh.platform.web import RateLimiter


@dataclass
class AuthComponents:
    keys: SigningKeyService
    clients: ClientService
    assertions: ClientAssertionVerifier
    registration: RegistrationService
    users: UserService
    roles: RoleService
    throttle: LoginThrottle
    revocations: RevocationCache
    tokens: TokenService
    audit: AuditTrail
    token_limiter: RateLimiter
    codes: AuthorizationCodes
    browser_sessions: BrowserSessions
    sign_in: SignInService
    patients: PatientAccess
    launches: LaunchService


class AuthState(PlatformState):
    """``app.state`` of the auth-service."""

    settings: AuthSettings
    auth: AuthComponents


def components_of(request: Request) -> AuthComponents:
    """The app's domain services (the OAuth endpoints call this directly: see tokens/endpoints)."""
    return AuthState.of(request.app).auth


def context_of(request: Request) -> RequestOrigin:
    """Where the request came from (the caller is not known yet: token requests)."""
    return RequestOrigin.of(request)


async def get_components(request: Request) -> AuthComponents:
    return components_of(request)


Components = Annotated[AuthComponents, Depends(get_components)]


async def request_context(request: Request) -> RequestOrigin:
    return context_of(request)


Context = Annotated[RequestOrigin, Depends(request_context)]


async def audit_admin_change(
    components: AuthComponents,
    ctx: RequestOrigin,
    principal: Principal,
    action: str,
    resource_type: str,
    resource_id: str,
    **details: object,
) -> None:
    """Every admin change is audited: who changed what, from where."""
    await components.audit.record(
        AuditRecord.for_origin(
            replace(ctx, principal=principal),
            action,
            resource_type=resource_type,
            resource_id=resource_id,
            details=dict(details),
        )
    )
