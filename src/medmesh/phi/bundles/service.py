"""Transaction and batch Bundles (``POST /fhir``) and ``Patient/$everything``.

Every entry is checked against the caller's policy and audited like the single
resource interactions (``fhir.create``, ``fhir.update``, ``fhir.delete``,
``fhir.read`` ...), and the Bundle itself is audited (``fhir.transaction`` /
``fhir.batch`` with its entry count and the patients it touched). See
:mod:`medmesh.phi.bundles.processing` for how entries are resolved and run.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from medmesh.phi.auditing import PhiAuditor
from medmesh.phi.bulk_import.pool import PreparationPool
from medmesh.phi.bundles.everything import EverythingQuery
from medmesh.phi.bundles.processing import BundleRun
from medmesh.phi.bundles.requests import BundleEntry, parse_bundle
from medmesh.phi.collection_pacing import bulk_collection_pacing
from medmesh.phi.config import PhiSettings
from medmesh.phi.context import FhirContext
from medmesh.phi.resources.service import ResourceService
from medmesh.platform.errors import MedmeshError

if TYPE_CHECKING:
    from medmesh.phi.search.service import SearchService


class BundleService:
    def __init__(
        self,
        settings: PhiSettings,
        resources: ResourceService,
        search: SearchService,
        auditor: PhiAuditor,
        *,
        preparation: PreparationPool | None = None,
    ) -> None:
        self.settings = settings
        #: Worker processes that prepare a large transaction's creates (None: done here).
        self.preparation = preparation
        self.resources = resources
        self.search = search
        self.auditor = auditor
        self._everything = EverythingQuery(settings, resources)

    async def process(
        self, session: AsyncSession, ctx: FhirContext, bundle: Any, *, prefer: str | None = None
    ) -> dict[str, Any]:
        """Run a transaction or batch Bundle; return its ``transaction-response``/``batch-response``.

        ``prefer`` is the ``Prefer: return=`` choice: ``representation`` puts each written
        resource in its response entry, ``OperationOutcome`` an outcome; by default entries
        carry only status, location, etag and lastModified.
        A transaction that fails raises the failing entry's error (nothing is stored once the
        request's session rolls back); a batch answers every entry with its own status.
        """
        with bulk_collection_pacing():
            kind, entries = parse_bundle(bundle, self.settings.max_bundle_entries, ctx.base_url)
            # One write slot for the whole Bundle, taken once it is parsed; a token that can
            # write nothing (a batch of reads) takes none.
            async with self.resources.writes.slot(ctx.principal, None, "cud"):
                return await self._process(session, ctx, kind, entries, prefer)

    async def _process(
        self,
        session: AsyncSession,
        ctx: FhirContext,
        kind: str,
        entries: list[BundleEntry],
        prefer: str | None,
    ) -> dict[str, Any]:
        run = BundleRun(
            self.resources, self.search, session, ctx, entries, prefer, self.preparation
        )
        action = f"fhir.{kind}"
        if kind == "transaction":
            try:
                await run.transaction()
            except MedmeshError as exc:
                await self.auditor.record(
                    ctx,
                    action,
                    patients=run.patients,
                    outcome="failure",
                    entries=len(entries),
                    status=exc.status,
                )
                raise
        else:
            await run.batch()
        details: dict[str, Any] = {"entries": len(entries)}
        if kind == "batch":
            details["failed"] = run.failed()
        if not run.audited:
            await self.auditor.record(ctx, action, patients=run.patients, **details)
        return {
            "resourceType": "Bundle",
            "id": uuid.uuid4().hex,
            "type": f"{kind}-response",
            "entry": run.response_entries(),
        }

    async def everything(
        self,
        session: AsyncSession,
        ctx: FhirContext,
        patient_id: str,
        params: list[tuple[str, str]],
        *,
        lenient: bool = False,
    ) -> dict[str, Any]:
        """One page of ``Patient/{patient_id}/$everything`` (a searchset Bundle), audited ``fhir.everything``."""
        return await self._everything.run(session, ctx, patient_id, params, lenient=lenient)
