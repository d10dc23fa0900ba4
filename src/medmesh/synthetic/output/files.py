"""Output files written as the run goes, each hashed (SHA-256) and counted on the way to disk."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO


@dataclass(frozen=True)
class WrittenFile:
    """One finished output file as the manifest lists it (``url`` is relative to the run folder)."""

    format: str
    type: str
    url: str
    count: int
    bytes: int
    sha256: str

    def to_json(self) -> dict[str, str | int]:
        return {
            "type": self.type,
            "url": self.url,
            "format": self.format,
            "count": self.count,
            "bytes": self.bytes,
            "sha256": self.sha256,
        }


class HashedFile:
    """An append-only output file that hashes what it writes and counts its items (lines, rows)."""

    def __init__(self, root: Path, url: str, *, format: str, type: str) -> None:
        self.url = url
        self.format = format
        self.type = type
        self.path = root / url
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle: BinaryIO = self.path.open("wb")
        self._digest = hashlib.sha256()
        self._bytes = 0
        self._count = 0

    def write(self, data: bytes | bytearray, count: int) -> None:
        self._handle.write(data)
        self._digest.update(data)
        self._bytes += len(data)
        self._count += count

    def close(self) -> WrittenFile:
        self._handle.close()
        return WrittenFile(
            format=self.format,
            type=self.type,
            url=self.url,
            count=self._count,
            bytes=self._bytes,
            sha256=self._digest.hexdigest(),
        )

    def abandon(self) -> None:
        """Close and delete the file (a cancelled or failed run)."""
        self._handle.close()
        self.path.unlink(missing_ok=True)


def write_whole_file(
    root: Path, url: str, data: bytes, *, format: str, type: str, count: int
) -> WrittenFile:
    """Write a small file in one go (the directory bundle, a patient's bundle)."""
    path = root / url
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return WrittenFile(
        format=format,
        type=type,
        url=url,
        count=count,
        bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )
