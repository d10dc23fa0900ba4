"""A small run in every format, generated once for the output tests of a module."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest

from medmesh.synthetic.engine import GenerationOptions, PatientGenerator
from medmesh.synthetic.runner import Manifest, run_generation

REFERENCE_DATE = date(2026, 1, 1)


def options(size: int, seed: int = 20261126, **extra: Any) -> GenerationOptions:
    return GenerationOptions(seed=seed, size=size, reference_date=REFERENCE_DATE, **extra)


@dataclass
class Run:
    out: Path
    options: GenerationOptions
    manifest: Manifest

    def ndjson(self, resource_type: str) -> list[dict[str, Any]]:
        lines = (self.out / "ndjson" / f"{resource_type}.ndjson").read_bytes().splitlines()
        return [orjson.loads(line) for line in lines]

    def directory(self) -> list[dict[str, Any]]:
        return PatientGenerator(self.options).directory()


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    out = tmp_path_factory.mktemp("run")
    chosen = options(40, cohorts=())
    manifest = run_generation(
        chosen, out, formats=frozenset({"ndjson", "bundle", "csv"}), chunk_size=16
    )
    return Run(out, chosen, manifest)
