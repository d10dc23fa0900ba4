"""Where a job's files are, and which of them may be downloaded.

Only what the job's manifest names can be downloaded: the files it lists, ``manifest.json``
itself, and the per-patient Bundles ``fhir/patient-<index>.json`` for indexes below the run's
size (the manifest lists their ``SHA256SUMS`` rather than 100,000 entries). A name is matched
against that list before it ever touches the filesystem, and the resolved path must still lie
inside the job's folder, so ``..``, absolute paths and symlinks lead nowhere.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medmesh.synthetic.errors import OutputNotFound

MANIFEST = "manifest.json"
_PATIENT_BUNDLE = re.compile(r"fhir/patient-(\d{7})\.json")
MEDIA_TYPES = {
    ".ndjson": "application/fhir+ndjson",
    ".csv": "text/csv; charset=utf-8",
}


@dataclass(frozen=True)
class OutputFileRef:
    path: Path
    media_type: str
    sha256: str | None


class JobFolders:
    """The folder of each job under the service's output directory."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def of(self, job_id: str) -> Path:
        return self.root / job_id

    def remove(self, job_id: str) -> None:
        """Delete a job's files (a job that did not succeed keeps none)."""
        shutil.rmtree(self.of(job_id), ignore_errors=True)

    def resolve(self, job_id: str, manifest: dict[str, Any], name: str) -> OutputFileRef:
        """The file ``name`` of a job with ``manifest``; 404 unless the manifest names it."""
        listed = {f["url"]: f for f in manifest.get("output", [])}
        sha256: str | None = None
        if name in listed:
            sha256 = listed[name]["sha256"]
        elif name != MANIFEST and not _is_patient_bundle(manifest, name):
            raise OutputNotFound(f"the job's output has no file {name!r}")
        folder = self.of(job_id).resolve()
        path = (folder / name).resolve()
        if not path.is_relative_to(folder):
            raise OutputNotFound(f"the job's output has no file {name!r}")
        if not path.is_file():
            raise OutputNotFound(
                f"{name!r} is not on this replica: a job's files live where it ran, unless the "
                "output directory is a volume all replicas share"
            )
        return OutputFileRef(path, _media_type(name), sha256)


def _is_patient_bundle(manifest: dict[str, Any], name: str) -> bool:
    match = _PATIENT_BUNDLE.fullmatch(name)
    return bool(match and manifest.get("bundles") and int(match[1]) < manifest["patients"])


def _media_type(name: str) -> str:
    if name == MANIFEST:
        return "application/json"
    suffix = Path(name).suffix
    if suffix == ".json":
        return "application/fhir+json"
    return MEDIA_TYPES.get(suffix, "text/plain; charset=utf-8")
