"""NDJSON in the Bulk Data layout: one file per type, one resource per line, plain references."""

from __future__ import annotations

import orjson

from medmesh.synthetic.runner import ndjson_stream
from tests.synthetic.output.conftest import Run
from tests.synthetic.output.test_bundles import references


def test_every_line_is_one_resource_of_the_file_type(run: Run) -> None:
    files = sorted((run.out / "ndjson").glob("*.ndjson"))
    assert {path.stem for path in files} == set(run.manifest.counts)
    for path in files:
        data = path.read_bytes()
        assert data.endswith(b"\n")
        lines = data.splitlines()
        assert len(lines) == run.manifest.counts[path.stem]
        for line in lines:
            resource = orjson.loads(line)
            assert resource["resourceType"] == path.stem
            assert resource["id"]


def test_references_are_plain_and_point_at_resources_of_the_run(run: Run) -> None:
    known: set[str] = set()
    for resource_type in run.manifest.counts:
        known |= {f"{resource_type}/{r['id']}" for r in run.ndjson(resource_type)}
    for resource_type in run.manifest.counts:
        for resource in run.ndjson(resource_type):
            for reference in references(resource):
                assert not reference.startswith("urn:"), reference
                assert "?" not in reference, reference
                assert reference in known, reference


def test_every_patient_is_written_once_with_its_records(run: Run) -> None:
    patients = run.ndjson("Patient")
    assert len(patients) == run.options.size
    assert len({p["id"] for p in patients}) == run.options.size
    assert run.manifest.resources / run.options.size > 10


def test_the_stream_holds_the_lines_of_the_files_in_the_same_order(run: Run) -> None:
    streamed = b"".join(ndjson_stream(run.options)).splitlines()
    for path in (run.out / "ndjson").glob("*.ndjson"):
        of_type = [line for line in streamed if orjson.loads(line)["resourceType"] == path.stem]
        assert of_type == path.read_bytes().splitlines()
    assert len(streamed) == run.manifest.resources
