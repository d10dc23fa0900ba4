"""phi-service's domain services (built once per app), its typed app state, and
:class:`PhiCall`: what every FHIR endpoint, direct or routed, starts from."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.phi.access.break_glass import register_policy
from medmesh.phi.access.policy import AccessPolicy
from medmesh.phi.auditing import PhiAuditor
from medmesh.phi.config import PhiSettings
from medmesh.phi.context import FhirContext
from medmesh.phi.fhir.references import LocalBases
from medmesh.phi.protection import PhiProtection
from medmesh.phi.resources.service import ResourceService
from medmesh.phi.search.index import SearchIndex
from medmesh.platform.db import Database, session_for
from medmesh.platform.origin import RequestOrigin
from medmesh.platform.state import PlatformState
from medmesh.platform.tokens import CurrentPrincipal, Principal, get_principal

if TYPE_CHECKING:
    from medmesh.phi.access.consent import ConsentRegistry
    from medmesh.phi.bulk_import.jobs import ImportJobs
    from medmesh.phi.bulk_import.pool import PreparationPool
    from medmesh.phi.bundles.service import BundleService
    from medmesh.phi.search.service import SearchService

MAX_REASON = 500


@dataclass
class PhiComponents:
    protection: PhiProtection
    index: SearchIndex
    auditor: PhiAuditor
    #: Also admits writes (``PhiSettings.concurrent_writes``, ``writes_per_client``).
    resources: ResourceService
    search: SearchService
    bundles: BundleService
    consents: ConsentRegistry
    #: ``$import`` jobs.
    imports: ImportJobs | None = None
    #: Worker processes that prepare import lines and transactions' creates (None: none).
    preparation: PreparationPool | None = None
    base_path: str = "/fhir"


class PhiState(PlatformState):
    """``app.state`` of the phi-service."""

    settings: PhiSettings
    phi: PhiComponents
    #: The serialized CapabilityStatement for each base URL it was asked under.
    capability_statements: dict[str, bytes]


@dataclass(frozen=True, slots=True)
class PhiCall:
    """One FHIR request as an endpoint sees it: the caller's context, the services, the
    request's session and the database."""

    request: Request
    ctx: FhirContext
    services: PhiComponents

    @classmethod
    async def of(cls, request: Request) -> PhiCall:
        """The call of a direct route (the token is verified here: no dependency solving)."""
        return await cls.for_principal(request, await get_principal(request))

    @classmethod
    async def for_principal(cls, request: Request, principal: Principal) -> PhiCall:
        """The call of ``principal``: its access policy (break-glass reason if any, Consent
        denials), where it came from, and the bases of ``/fhir``."""
        state = PhiState.of(request.app)
        services = state.phi
        reason = request.headers.get("x-break-glass-reason")
        if reason is not None:
            reason = reason.strip()[:MAX_REASON] or None
        policy = AccessPolicy(principal, break_glass_reason=reason)
        policy.denied_patients = await services.consents.denied_patients(state.database)
        register_policy(request, policy)
        ctx = FhirContext(
            origin=RequestOrigin.of(request, principal),
            policy=policy,
            base_url_of=partial(base_url, request),
            local_bases_of=partial(local_bases, request),
        )
        return cls(request, ctx, services)

    @property
    def session(self) -> AsyncSession:
        """The request's session (opened on first use; committed or rolled back by the
        platform's session middleware)."""
        return session_for(self.request)

    @property
    def database(self) -> Database:
        """The database, for reads outside the request's session."""
        return PhiState.of(self.request.app).database


async def _routed_call(request: Request, principal: CurrentPrincipal) -> PhiCall:
    return await PhiCall.for_principal(request, principal)


Call = Annotated[PhiCall, Depends(_routed_call)]
"""The :class:`PhiCall` of a routed endpoint."""


def base_url(request: Request) -> str:
    configured = PhiState.of(request.app).settings.base_url
    if configured:
        return configured.rstrip("/")
    return _remembered(_base_urls, _request_key(request, None), partial(_own_base, request))


def local_bases(request: Request) -> LocalBases:
    """The configured base, the base of this request (its scheme, Host and root path) and the
    address the request arrived at (which the client does not choose)."""
    configured = PhiState.of(request.app).settings.base_url
    key = _request_key(request, configured)
    return _remembered(_local_bases, key, partial(_local_bases_of, request, configured))


def _request_key(request: Request, configured: str | None) -> tuple[Any, ...]:
    """What a request's bases depend on. Starlette rebuilds the URL from the scope on every call
    (a fiftieth of a create); a client sends the same parts request after request."""
    scope = request.scope
    return (
        configured,
        scope.get("scheme"),
        request.headers.get("host"),
        scope.get("server"),
        scope.get("root_path"),
        scope.get("app_root_path"),
    )


_T = TypeVar("_T")


def _remembered(
    memo: dict[tuple[Any, ...], _T], key: tuple[Any, ...], build: Callable[[], _T]
) -> _T:
    found = memo.get(key)
    if found is None:
        if len(memo) >= 256:  # the Host header is the client's: keep the memo bounded
            memo.clear()
        found = memo[key] = build()
    return found


_base_urls: dict[tuple[Any, ...], str] = {}
_local_bases: dict[tuple[Any, ...], LocalBases] = {}


def _own_base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/fhir"


def _local_bases_of(request: Request, configured: str | None) -> LocalBases:
    bases = [configured or "", _own_base(request)]
    server = request.scope.get("server")
    if server and server[0]:
        host = f"[{server[0]}]" if ":" in str(server[0]) else str(server[0])
        port = "" if server[1] is None else f":{server[1]}"
        root = request.scope.get("root_path", "").rstrip("/")
        scheme = request.scope.get("scheme", "http")
        bases.append(f"{scheme}://{host}{port}{root}/fhir")
    return LocalBases(*bases)
