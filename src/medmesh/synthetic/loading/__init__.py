"""Loading generated patients into phi-service (or any FHIR R4 server that takes transactions).

:func:`load_patients` generates a run's Bundles on the fly (the same bytes as the run's
``fhir/`` files) and posts them; :class:`PhiLoader` posts Bundles from anywhere (files on disk).
Given the URLs where phi can fetch the run's NDJSON files, both use phi's ``$import`` instead
when its CapabilityStatement offers it (:mod:`.bulk_import`).
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from medmesh.synthetic.engine import GenerationOptions
from medmesh.synthetic.loading.bulk_import import NdjsonInput
from medmesh.synthetic.loading.loader import CancelCheck, PhiLoader, ProgressCallback
from medmesh.synthetic.loading.summary import (
    LoadCancelled,
    LoadFailure,
    LoadRefused,
    LoadSummary,
)
from medmesh.synthetic.loading.target import LoadSettings, PhiTarget
from medmesh.synthetic.runner import directory_bundle_bytes, iter_patient_bundles

__all__ = [
    "LoadCancelled",
    "LoadFailure",
    "LoadRefused",
    "LoadSettings",
    "LoadSummary",
    "NdjsonInput",
    "PhiLoader",
    "PhiTarget",
    "load_patients",
]


async def load_patients(
    target: PhiTarget,
    options: GenerationOptions,
    *,
    settings: LoadSettings | None = None,
    start: int = 0,
    stop: int | None = None,
    skip_existing: bool = False,
    on_progress: ProgressCallback | None = None,
    is_cancelled: CancelCheck | None = None,
    ndjson: Sequence[NdjsonInput] = (),
) -> LoadSummary:
    """Generate patients ``start`` to ``stop - 1`` of ``options`` and load them into ``target``.

    The run's directory (organizations, locations, practitioners) goes first, then the
    patients' transaction Bundles. ``on_progress(patients_done)`` follows the load;
    ``is_cancelled()`` stops it (raising :class:`LoadCancelled`). With ``skip_existing``,
    patients whose MRN the server already has are left out, so loading the same run twice
    stores nothing new. Returns the :class:`LoadSummary`; raises :class:`LoadRefused` when the
    server refuses the credentials, the scopes or the directory.

    ``ndjson``: where phi can fetch the run's NDJSON files (one input per file); when phi's
    CapabilityStatement offers ``$import``, the run is loaded through it instead of Bundles
    (``start`` and ``stop`` then do not apply: the files hold the whole run).
    """
    loader = PhiLoader(target, settings, on_progress=on_progress, is_cancelled=is_cancelled)
    directory = orjson.loads(directory_bundle_bytes(options))
    bundles = iter_patient_bundles(options, start, stop)
    if ndjson:
        imported = await loader.import_ndjson(ndjson)
        if imported is not None:
            return imported
    return await loader.load(directory, bundles, first_index=start, skip_existing=skip_existing)
