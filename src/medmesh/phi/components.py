"""phi-service's domain services (built once per app) and the per-request FHIR context."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request

from medmesh.phi.access.break_glass import register_policy
from medmesh.phi.access.policy import AccessPolicy
from medmesh.phi.admission import WriteAdmission
from medmesh.phi.auditing import PhiAuditor
from medmesh.phi.context import FhirContext
from medmesh.phi.fhir.references import LocalBases
from medmesh.phi.protection import PhiProtection
from medmesh.phi.resources.service import ResourceService
from medmesh.phi.search.index import SearchIndex
from medmesh.platform.logging import request_id_var
from medmesh.platform.tokens import CurrentPrincipal, Principal, get_principal
from medmesh.platform.web import client_ip

if TYPE_CHECKING:
    from medmesh.phi.access.consent import ConsentRegistry
    from medmesh.phi.bundles.service import BundleService
    from medmesh.phi.search.service import SearchService

MAX_REASON = 500


@dataclass
class PhiComponents:
    protection: PhiProtection
    index: SearchIndex
    auditor: PhiAuditor
    resources: ResourceService
    search: SearchService
    bundles: BundleService
    consents: ConsentRegistry
    #: Admission of writes (``PhiSettings.concurrent_writes``, ``writes_per_client``).
    writes: WriteAdmission
    base_path: str = "/fhir"


async def get_components(request: Request) -> PhiComponents:
    components: PhiComponents = request.app.state.phi
    return components


Components = Annotated[PhiComponents, Depends(get_components)]


def base_url(request: Request) -> str:
    configured: str = request.app.state.settings.base_url
    if configured:
        return configured.rstrip("/")
    # Starlette rebuilds the URL from the scope on every call (a fiftieth of a create); the base
    # depends only on these, and a client sends the same ones request after request.
    scope = request.scope
    key = (
        scope.get("scheme"),
        request.headers.get("host"),
        scope.get("server"),
        scope.get("root_path"),
        scope.get("app_root_path"),
    )
    found = _base_urls.get(key)
    if found is None:
        if len(_base_urls) >= 256:  # the Host header is the client's: keep the memo bounded
            _base_urls.clear()
        found = _base_urls[key] = str(request.base_url).rstrip("/") + "/fhir"
    return found


_base_urls: dict[tuple[Any, ...], str] = {}


def local_bases(request: Request) -> LocalBases:
    """The configured base, the base of this request (its scheme, Host and root path) and the
    address the request arrived at (which the client does not choose)."""
    own = str(request.base_url).rstrip("/") + "/fhir"
    bases = [request.app.state.settings.base_url, own]
    server = request.scope.get("server")
    if server and server[0]:
        host = f"[{server[0]}]" if ":" in str(server[0]) else str(server[0])
        port = "" if server[1] is None else f":{server[1]}"
        root = request.scope.get("root_path", "").rstrip("/")
        scheme = request.scope.get("scheme", "http")
        bases.append(f"{scheme}://{host}{port}{root}/fhir")
    return LocalBases(*bases)


async def fhir_context(
    request: Request, principal: CurrentPrincipal, components: Components
) -> FhirContext:
    """Who is asking (verified token), with which rights, from where; break-glass reason if any."""
    return await _context(request, principal, components)


async def request_context(request: Request) -> tuple[FhirContext, PhiComponents]:
    """:func:`fhir_context` and the components for a direct route (no dependency solving)."""
    components: PhiComponents = request.app.state.phi
    return await _context(request, await get_principal(request), components), components


async def _context(
    request: Request, principal: Principal, components: PhiComponents
) -> FhirContext:
    reason = request.headers.get("x-break-glass-reason")
    if reason is not None:
        reason = reason.strip()[:MAX_REASON] or None
    policy = AccessPolicy(principal, break_glass_reason=reason)
    policy.denied_patients = await components.consents.denied_patients(request.app.state.database)
    register_policy(request, policy)
    return FhirContext(
        principal=principal,
        policy=policy,
        ip=client_ip(request),
        request_id=request_id_var.get(),
        base_url_of=partial(base_url, request),
        local_bases_of=partial(local_bases, request),
    )


Ctx = Annotated[FhirContext, Depends(fhir_context)]
