"""manifest.json: counts and checksums that match the files, and what reproduces the run."""

from __future__ import annotations

import hashlib

import orjson

from medmesh.synthetic.engine import GENERATOR_VERSION, GenerationOptions
from medmesh.synthetic.runner import read_manifest
from tests.synthetic.output.conftest import Run


def test_the_manifest_lists_every_file_with_its_size_and_checksum(run: Run) -> None:
    data = orjson.loads((run.out / "manifest.json").read_bytes())
    assert data["complete"] is True
    listed = {entry["url"] for entry in data["output"]}
    on_disk = {
        str(p.relative_to(run.out))
        for p in run.out.rglob("*")
        if p.is_file() and p.name != "manifest.json" and not p.name.startswith("patient-")
    }
    assert listed == on_disk
    for entry in data["output"]:
        content = (run.out / entry["url"]).read_bytes()
        assert entry["bytes"] == len(content)
        assert entry["sha256"] == hashlib.sha256(content).hexdigest()
        if entry["format"] == "ndjson":
            assert entry["count"] == content.count(b"\n") == data["counts"][entry["type"]]
        if entry["format"] == "csv":
            assert entry["count"] == content.count(b"\n") - 1  # the header


def test_every_patient_bundle_is_covered_by_the_checksums_file(run: Run) -> None:
    lines = (run.out / "fhir" / "SHA256SUMS").read_text().splitlines()
    assert len(lines) == run.options.size
    for line in lines:
        digest, name = line.split("  ")
        assert hashlib.sha256((run.out / "fhir" / name).read_bytes()).hexdigest() == digest


def test_the_manifest_says_how_to_reproduce_the_run(run: Run) -> None:
    data = orjson.loads((run.out / "manifest.json").read_bytes())
    assert data["seed"] == run.options.seed
    assert GenerationOptions.from_json(data["options"]) == run.options
    assert data["generator"]["version"] == GENERATOR_VERSION
    assert data["patients"] == run.options.size
    assert data["resources"] == sum(data["counts"].values())
    assert data["counts"]["Patient"] == run.options.size
    assert data["formats"] == ["bundle", "csv", "ndjson"]
    assert data["realism"] == run.manifest.realism
    assert data["transactionTime"].endswith("Z")
    assert read_manifest(run.out) == run.manifest
