"""synthetic-phi-service: ``create_app()`` and the ASGI entry ``medmesh.synthetic.main:app``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from medmesh.platform.app import create_service_app
from medmesh.synthetic.auditing import SyntheticAuditor
from medmesh.synthetic.components import SyntheticComponents, SyntheticState
from medmesh.synthetic.config import SyntheticSettings
from medmesh.synthetic.generate.endpoints import router as generate_router
from medmesh.synthetic.generate.service import GenerationService
from medmesh.synthetic.jobs.endpoints import router as jobs_router
from medmesh.synthetic.jobs.outputs import JobFolders
from medmesh.synthetic.jobs.service import JobService
from medmesh.synthetic.jobs.supervisor import JobSupervisor
from medmesh.synthetic.metrics import SyntheticMetrics

VERSION = "0.1.0"
DESCRIPTION = """Realistic synthetic patients, fast and reproducible, as FHIR R4.

Small runs are answered synchronously (`POST /v1/generate`: a collection of transaction Bundles,
or NDJSON); large ones are jobs (`POST /v1/jobs`) that write NDJSON (Bulk Data layout), one
transaction Bundle per patient and CSV tables with a manifest of checksums, and can load every
patient into phi-service. The same seed and options give the same bytes. Every call needs the
scope `synthetic:generate`; errors are problem+json. The data is synthetic: every resource is
tagged so in `meta.tag`.
"""


def create_app(settings: SyntheticSettings | None = None) -> FastAPI:
    """Build the synthetic-phi-service app."""
    settings = settings or SyntheticSettings()

    @asynccontextmanager
    async def run_jobs(app: FastAPI) -> AsyncIterator[None]:
        supervisor = SyntheticState.of(app).synthetic.supervisor
        await supervisor.start()
        try:
            yield
        finally:
            await supervisor.stop()

    app = create_service_app(
        settings,
        title="medmesh synthetic-phi-service",
        version=VERSION,
        description=DESCRIPTION,
        routers=[generate_router, jobs_router],
        lifespans=[run_jobs],
        state=SyntheticState,
    )
    state = SyntheticState.of(app)
    metrics = SyntheticMetrics.register(state.metrics)
    auditor = SyntheticAuditor(state.audit)
    folders = JobFolders(settings.effective_output_dir)
    state.synthetic = SyntheticComponents(
        generation=GenerationService(settings, auditor, metrics),
        jobs=JobService(settings, folders, auditor),
        supervisor=JobSupervisor(state.database, settings, metrics, folders),
    )
    return app


def __getattr__(name: str) -> FastAPI:
    # ``medmesh.synthetic.main:app`` builds the app on first use, so importing the module stays cheap.
    if name == "app":
        return create_app()
    raise AttributeError(name)
