"""Small runs answered synchronously: a collection Bundle, an NDJSON stream, a realism report.

The work is CPU-bound, so it runs in a worker thread (the NDJSON stream is iterated there by
Starlette) and the sizes are capped (``max_sync_size``, ``max_realism_size``); bigger runs are
jobs. The output is the same bytes a job writes for the same options.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from medmesh.platform.origin import RequestOrigin
from medmesh.synthetic.auditing import SyntheticAuditor
from medmesh.synthetic.config import SyntheticSettings
from medmesh.synthetic.engine import GENERATOR_VERSION, GenerationOptions, PatientGenerator
from medmesh.synthetic.generate.schemas import GenerateRequest, RealismAnswer
from medmesh.synthetic.metrics import SyntheticMetrics
from medmesh.synthetic.options import GenerationRequest, generation_options
from medmesh.synthetic.realism import RealismReport
from medmesh.synthetic.runner import directory_bundle_bytes, iter_patient_bundles, ndjson_stream

_COLLECTION_HEAD = b'{"resourceType":"Bundle","type":"collection","entry":['


def collection_bundle(options: GenerationOptions) -> bytes:
    """The run as one collection Bundle: the directory transaction Bundle, then one transaction
    Bundle per patient (the bytes of the run's ``fhir/`` files, nested as entries)."""
    parts = [directory_bundle_bytes(options), *iter_patient_bundles(options)]
    return _COLLECTION_HEAD + b",".join(b'{"resource":' + part + b"}" for part in parts) + b"]}"


def realism_report(options: GenerationOptions) -> RealismReport:
    generator = PatientGenerator(options)
    report = RealismReport()
    for index in range(options.size):
        report.add(generator.patient(index).facts)
    return report


class GenerationService:
    def __init__(
        self, settings: SyntheticSettings, auditor: SyntheticAuditor, metrics: SyntheticMetrics
    ) -> None:
        self.settings = settings
        self.auditor = auditor
        self.metrics = metrics

    def _options(self, request: GenerationRequest, max_size: int, limit: str) -> GenerationOptions:
        return generation_options(
            request, today=datetime.now(UTC).date(), max_size=max_size, limit_name=limit
        )

    async def generate(
        self, caller: RequestOrigin, request: GenerateRequest
    ) -> tuple[GenerationOptions, bytes | Iterator[bytes]]:
        """The run's options and its body: bytes (bundle) or a stream of NDJSON chunks."""
        options = self._options(
            request,
            self.settings.max_sync_size,
            "synchronous limit (larger runs: POST /v1/jobs)",
        )
        await self.auditor.record(
            caller,
            "synthetic.generate",
            size=options.size,
            seed=options.seed,
            format=request.format,
        )
        self.metrics.patients_generated.labels("sync").inc(options.size)
        if request.format == "ndjson":
            return options, ndjson_stream(options)
        return options, await asyncio.to_thread(collection_bundle, options)

    async def realism(self, caller: RequestOrigin, request: GenerationRequest) -> RealismAnswer:
        options = self._options(
            request,
            self.settings.max_realism_size,
            "limit for a synchronous realism report (larger runs: a job's report)",
        )
        await self.auditor.record(caller, "synthetic.realism", size=options.size, seed=options.seed)
        report = await asyncio.to_thread(realism_report, options)
        self.metrics.patients_generated.labels("sync").inc(options.size)
        body: dict[str, Any] = report.to_json()
        return RealismAnswer(
            seed=options.seed,
            options=options.to_json(),
            generator_version=GENERATOR_VERSION,
            report=body,
            text=report.render_text(),
        )
