"""``manifest.json``: what a run wrote and how to reproduce it, written last.

Bulk-Data-like (``transactionTime``, ``requiresAccessToken``, ``output`` with ``type``/``url``/
``count``, ``error``) plus what reproduces and checks the run: the seed, the options, the
generator version, counts per resource type, the size and SHA-256 of every file, the realism
report, and ``complete: true``. It is written only after every other file is closed, through a
temporary name and an atomic rename, so a folder with a complete manifest is a complete run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from medmesh.synthetic.output.files import WrittenFile
from medmesh.synthetic.realism import RealismReport

MANIFEST_NAME = "manifest.json"


@dataclass(frozen=True)
class Manifest:
    transaction_time: str
    seed: int
    options: dict[str, Any]
    generator_version: str
    formats: tuple[str, ...]
    patients: int
    counts: dict[str, int]
    files: tuple[WrittenFile, ...]
    realism: dict[str, Any]
    complete: bool = True
    bundles: dict[str, Any] = field(default_factory=dict)
    #: The realism report itself (for ``render_text``), on a manifest returned by a run.
    report: RealismReport | None = field(default=None, compare=False, repr=False)

    @property
    def resources(self) -> int:
        return sum(self.counts.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "transactionTime": self.transaction_time,
            "requiresAccessToken": False,
            "output": [file.to_json() for file in self.files],
            "error": [],
            "complete": self.complete,
            "generator": {"name": "medmesh-synthetic", "version": self.generator_version},
            "seed": self.seed,
            "options": self.options,
            "formats": list(self.formats),
            "patients": self.patients,
            "resources": self.resources,
            "counts": dict(sorted(self.counts.items())),
            "bundles": self.bundles,
            "realism": self.realism,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        return cls(
            transaction_time=data["transactionTime"],
            seed=data["seed"],
            options=data["options"],
            generator_version=data["generator"]["version"],
            formats=tuple(data["formats"]),
            patients=data["patients"],
            counts=dict(data["counts"]),
            files=tuple(
                WrittenFile(
                    format=f["format"],
                    type=f["type"],
                    url=f["url"],
                    count=f["count"],
                    bytes=f["bytes"],
                    sha256=f["sha256"],
                )
                for f in data["output"]
            ),
            realism=data["realism"],
            complete=data["complete"],
            bundles=data.get("bundles", {}),
        )


def write_manifest(out_dir: Path, manifest: Manifest) -> Path:
    """Write ``manifest.json`` atomically (a reader never sees half of it)."""
    path = out_dir / MANIFEST_NAME
    temporary = out_dir / f".{MANIFEST_NAME}.partial"
    temporary.write_bytes(orjson.dumps(manifest.to_json(), option=orjson.OPT_INDENT_2))
    os.replace(temporary, path)
    return path


def read_manifest(out_dir: Path) -> Manifest | None:
    """The manifest of a run folder, or None when there is none."""
    path = out_dir / MANIFEST_NAME
    if not path.exists():
        return None
    return Manifest.from_json(orjson.loads(path.read_bytes()))
