"""``fhir/``: the directory Bundle, one transaction Bundle file per patient, and ``SHA256SUMS``.

A run of 100,000 patients writes 100,000 Bundle files; their checksums go to ``fhir/SHA256SUMS``
(``sha256sum -c`` format, written as the run goes) and the manifest lists that file with its own
checksum, so memory stays constant and every file is still covered by a checksum.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from medmesh.synthetic.output.files import HashedFile, WrittenFile, write_whole_file

BUNDLE_FOLDER = "fhir"
DIRECTORY_BUNDLE = f"{BUNDLE_FOLDER}/directory.json"
CHECKSUMS = f"{BUNDLE_FOLDER}/SHA256SUMS"


def patient_bundle_name(index: int) -> str:
    """``patient-0000042.json``: names sort in index order, the order to load them in."""
    return f"patient-{index:07d}.json"


class BundleFolderWriter:
    def __init__(self, root: Path) -> None:
        self._folder = root / BUNDLE_FOLDER
        self._folder.mkdir(parents=True, exist_ok=True)
        self._remove_patient_files()  # a previous run's Bundles would not match SHA256SUMS
        self._root = root
        self._sums = HashedFile(root, CHECKSUMS, format="checksums", type="Bundle")
        self._directory: WrittenFile | None = None

    def write_directory(self, data: bytes, entries: int) -> None:
        self._directory = write_whole_file(
            self._root, DIRECTORY_BUNDLE, data, format="bundle", type="Bundle", count=entries
        )

    def write_patients(self, start: int, bundles: list[bytes]) -> None:
        lines = []
        for index, data in enumerate(bundles, start):
            name = patient_bundle_name(index)
            path = self._folder / name
            path.write_bytes(data)
            lines.append(f"{hashlib.sha256(data).hexdigest()}  {name}\n")
        self._sums.write("".join(lines).encode(), len(bundles))

    def close(self) -> list[WrittenFile]:
        files = [self._directory] if self._directory is not None else []
        return [*files, self._sums.close()]

    def abandon(self) -> None:
        """Delete what this run wrote under ``fhir/``."""
        self._sums.abandon()
        self._remove_patient_files()
        (self._root / DIRECTORY_BUNDLE).unlink(missing_ok=True)

    def _remove_patient_files(self) -> None:
        for path in self._folder.glob("patient-*.json"):
            path.unlink(missing_ok=True)
