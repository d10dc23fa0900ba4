"""phi-service: ``create_app()`` and the ASGI entry ``medmesh.phi.main:app``."""

from __future__ import annotations

from fastapi import FastAPI

from medmesh.phi import NATIVE_GROUP, NATIVE_MODULES
from medmesh.phi.access.break_glass import BreakGlassHeaderMiddleware
from medmesh.phi.access.consent import ConsentRegistry
from medmesh.phi.admission import WriteAdmission
from medmesh.phi.audit_events.endpoints import router as audit_events_router
from medmesh.phi.auditing import PhiAuditor
from medmesh.phi.bulk_import.endpoints import router as import_router
from medmesh.phi.bulk_import.endpoints import run_imports
from medmesh.phi.bulk_import.jobs import ImportJobs
from medmesh.phi.bulk_import.pool import PreparationMetrics, PreparationPool
from medmesh.phi.bundles.endpoints import router as bundles_router
from medmesh.phi.bundles.service import BundleService
from medmesh.phi.capability.endpoints import router as capability_router
from medmesh.phi.components import PhiComponents, PhiState
from medmesh.phi.config import PhiSettings
from medmesh.phi.fhir.errors import render_operation_outcome
from medmesh.phi.protection import load_protection
from medmesh.phi.resources.endpoints import router as resources_router
from medmesh.phi.resources.service import ResourceService
from medmesh.phi.search.endpoints import router as search_router
from medmesh.phi.search.index import SearchIndex
from medmesh.phi.search.service import SearchService
from medmesh.platform import native
from medmesh.platform.app import create_service_app
from medmesh.platform.logging import get_logger

VERSION = "0.1.0"
DESCRIPTION = """A FHIR R4 store for Protected Health Information.

CRUD with versions, search, transaction and batch Bundles, `Patient/$everything`; resources are
encrypted at rest (AES-256-GCM envelopes) and searched through keyed blind indexes; every access is
written to a hash-chained audit trail (served as FHIR AuditEvents); SMART v2 scopes and the patient
compartment decide who sees what. Errors are OperationOutcomes.
"""

log = get_logger("medmesh.phi")


def create_app(settings: PhiSettings | None = None) -> FastAPI:
    """Build the phi-service app."""
    settings = settings or PhiSettings()
    # Literal paths (metadata, _history, AuditEvent, $everything, Bundle posts) come before the
    # /fhir/{type}/{id} patterns that would otherwise swallow them.
    routers = [
        capability_router,
        audit_events_router,
        import_router,
        bundles_router,
        search_router,
        resources_router,
    ]
    app = create_service_app(
        settings,
        title="medmesh phi-service",
        version=VERSION,
        description=DESCRIPTION,
        routers=routers,
        error_renderers=[("/fhir", render_operation_outcome)],
        state=PhiState,
        lifespans=[run_imports],
    )
    state = PhiState.of(app)
    app.add_middleware(BreakGlassHeaderMiddleware)
    _report_native(state)
    protection = load_protection(settings)
    index = SearchIndex(protection)
    auditor = PhiAuditor(state.audit)
    consents = ConsentRegistry(protection)
    writes = WriteAdmission(settings.concurrent_writes, settings.effective_writes_per_client)
    resources = ResourceService(
        protection,
        index,
        auditor,
        settings.max_json_depth,
        writes=writes,
        consents=consents,
        database=state.database,
    )
    search = SearchService(settings, protection, resources, auditor)
    resources.conditions = search
    workers = settings.import_workers
    preparation = None
    if workers:
        counted = PreparationMetrics.register(state.metrics)
        preparation = PreparationPool(protection, settings.max_json_depth, workers, counted)
    bundles = BundleService(settings, resources, search, auditor, preparation=preparation)
    state.capability_statements = {}
    state.phi = PhiComponents(
        protection=protection,
        index=index,
        auditor=auditor,
        resources=resources,
        search=search,
        bundles=bundles,
        consents=consents,
        imports=ImportJobs(
            settings, state.database, resources, auditor, consents, preparation=preparation
        ),
        preparation=preparation,
    )
    return app


def _report_native(state: PhiState) -> None:
    """Say whether phi's compiled modules are in use (a log line and a gauge)."""
    status = native.status(NATIVE_GROUP)
    assert status is not None  # importing medmesh.phi decided it
    gauge = state.metrics.gauge(
        "medmesh_phi_compiled_modules",
        "phi's modules running compiled with mypyc (0: their sources; decision 0049).",
    )
    gauge.set(len(NATIVE_MODULES) if status.active else 0)
    if status.active or not status.wanted:
        log.info("native_modules", active=status.active, reason=status.reason)
    else:
        log.warning("native_modules", active=False, reason=status.reason)


def __getattr__(name: str) -> FastAPI:
    # ``medmesh.phi.main:app`` builds the app on first use, so importing the module stays cheap.
    if name == "app":
        return create_app()
    raise AttributeError(name)
