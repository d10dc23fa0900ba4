"""Writers of a run: transaction Bundles, Bulk Data NDJSON, Synthea-like CSV, the manifest."""

from medmesh.synthetic.output.bundles import (
    directory_bundle,
    patient_bundle_bytes,
    transaction_bundle,
)
from medmesh.synthetic.output.files import WrittenFile
from medmesh.synthetic.output.manifest import MANIFEST_NAME, Manifest, read_manifest, write_manifest

__all__ = [
    "MANIFEST_NAME",
    "Manifest",
    "WrittenFile",
    "directory_bundle",
    "patient_bundle_bytes",
    "read_manifest",
    "transaction_bundle",
    "write_manifest",
]
