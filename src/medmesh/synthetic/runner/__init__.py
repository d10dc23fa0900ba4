"""Generate runs of synthetic patients: files on disk (``run_generation``) or byte streams."""

from medmesh.synthetic.output.bundles import directory_bundle, transaction_bundle
from medmesh.synthetic.output.manifest import MANIFEST_NAME, Manifest, read_manifest
from medmesh.synthetic.runner.chunks import FORMATS
from medmesh.synthetic.runner.generation import (
    DEFAULT_CHUNK_SIZE,
    GenerationCancelled,
    run_generation,
)
from medmesh.synthetic.runner.streams import (
    directory_bundle_bytes,
    iter_patient_bundles,
    ndjson_stream,
)

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "FORMATS",
    "MANIFEST_NAME",
    "GenerationCancelled",
    "Manifest",
    "directory_bundle",
    "directory_bundle_bytes",
    "iter_patient_bundles",
    "ndjson_stream",
    "read_manifest",
    "run_generation",
    "transaction_bundle",
]
