"""Transaction Bundles: what a FHIR server loading them sees."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from medmesh.synthetic.engine import PatientGenerator
from medmesh.synthetic.runner import (
    directory_bundle,
    directory_bundle_bytes,
    iter_patient_bundles,
    transaction_bundle,
)
from tests.synthetic.output.conftest import Run, options


def references(node: Any) -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                found.append(value)
            else:
                found += references(value)
    elif isinstance(node, list):
        for item in node:
            found += references(item)
    return found


def test_every_patient_bundle_is_a_transaction_whose_references_resolve(run: Run) -> None:
    directory = {f"{r['resourceType']}/{r['id']}" for r in run.directory()}
    files = sorted((run.out / "fhir").glob("patient-*.json"))
    assert len(files) == run.options.size
    for path in files:
        bundle = orjson.loads(path.read_bytes())
        assert bundle["resourceType"] == "Bundle"
        assert bundle["type"] == "transaction"
        full_urls = {entry["fullUrl"] for entry in bundle["entry"]}
        assert len(full_urls) == len(bundle["entry"])
        for entry in bundle["entry"]:
            assert entry["fullUrl"] == "urn:uuid:" + entry["resource"]["id"]
            assert entry["request"] == {"method": "POST", "url": entry["resource"]["resourceType"]}
        assert bundle["entry"][0]["resource"]["resourceType"] == "Patient"
        for reference in references(bundle):
            assert "?" not in reference, reference
            assert reference in full_urls or reference in directory, (path.name, reference)


def test_the_directory_bundle_puts_every_directory_resource_at_its_id(run: Run) -> None:
    bundle = orjson.loads((run.out / "fhir" / "directory.json").read_bytes())
    assert bundle["type"] == "transaction"
    resources = run.directory()
    assert [e["resource"] for e in bundle["entry"]] == resources
    for entry in bundle["entry"]:
        resource = entry["resource"]
        assert entry["request"] == {
            "method": "PUT",
            "url": f"{resource['resourceType']}/{resource['id']}",
        }
    for reference in references(bundle):
        assert "?" not in reference
    assert (run.out / "fhir" / "directory.json").read_bytes() == directory_bundle_bytes(run.options)
    assert directory_bundle(resources) == bundle


def test_the_bundle_files_hold_the_same_bytes_as_the_stream_and_the_dict_form(run: Run) -> None:
    streamed = list(iter_patient_bundles(run.options, 5, 9))
    files = [(run.out / "fhir" / f"patient-{i:07d}.json").read_bytes() for i in range(5, 9)]
    assert streamed == files
    generator = PatientGenerator(run.options)
    for index, data in zip(range(5, 9), streamed, strict=True):
        assert orjson.dumps(transaction_bundle(generator.patient(index))) == data
        assert orjson.dumps(transaction_bundle(generator.patient(index, "urn"))) == data


def test_bundles_validate_as_fhir_r4b() -> None:
    bundle_model = pytest.importorskip("fhir.resources.R4B.bundle").Bundle
    chosen = options(3)
    bundle_model.model_validate(orjson.loads(directory_bundle_bytes(chosen)))
    for data in iter_patient_bundles(chosen):
        bundle_model.model_validate(orjson.loads(data))


def test_a_patient_range_outside_the_run_is_refused() -> None:
    with pytest.raises(ValueError, match="outside"):
        list(iter_patient_bundles(options(3), 2, 5))
