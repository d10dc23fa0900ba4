"""NDJSON in the FHIR Bulk Data layout: ``<Type>.ndjson``, one resource per line, plain references.

Files are opened the first time a type shows up and written chunk by chunk, so memory stays
the size of one chunk whatever the size of the run.
"""

from __future__ import annotations

from pathlib import Path

from medmesh.synthetic.output.files import HashedFile, WrittenFile

NDJSON_FOLDER = "ndjson"


def ndjson_url(resource_type: str) -> str:
    return f"{NDJSON_FOLDER}/{resource_type}.ndjson"


class NdjsonFolderWriter:
    """``ndjson/<Type>.ndjson`` files, one open handle per resource type."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._files: dict[str, HashedFile] = {}

    def write(self, resource_type: str, lines: bytes | bytearray, count: int) -> None:
        file = self._files.get(resource_type)
        if file is None:
            file = HashedFile(
                self._root, ndjson_url(resource_type), format="ndjson", type=resource_type
            )
            self._files[resource_type] = file
        file.write(lines, count)

    def close(self) -> list[WrittenFile]:
        return [self._files[name].close() for name in sorted(self._files)]

    def abandon(self) -> None:
        for file in self._files.values():
            file.abandon()
