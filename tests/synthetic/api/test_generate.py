"""POST /v1/generate and POST /v1/realism: small runs, answered in the response."""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson
import pytest
from fhir.resources.R4B.bundle import Bundle

from tests.synthetic.api.conftest import SyntheticHarness


async def generate(synthetic: SyntheticHarness, **body: Any) -> Any:
    response = await synthetic.http.post("/v1/generate", json=body, headers=synthetic.headers())
    assert response.status_code == 200, response.text
    return response


@pytest.mark.postgres
async def test_bundle_format_is_a_collection_of_loadable_transactions(
    synthetic: SyntheticHarness,
) -> None:
    response = await generate(synthetic, size=4, seed=42)
    assert response.headers["content-type"] == "application/fhir+json"
    assert response.headers["x-synthetic-seed"] == "42"
    collection = response.json()
    assert collection["resourceType"] == "Bundle"
    assert collection["type"] == "collection"
    directory, *patients = [entry["resource"] for entry in collection["entry"]]
    assert len(patients) == 4

    assert directory["type"] == "transaction"
    assert directory["entry"]
    for entry in directory["entry"]:
        resource = entry["resource"]
        assert entry["request"] == {
            "method": "PUT",
            "url": f"{resource['resourceType']}/{resource['id']}",
        }

    for bundle in patients:
        assert bundle["type"] == "transaction"
        resources = [entry["resource"] for entry in bundle["entry"]]
        assert resources[0]["resourceType"] == "Patient"
        assert len(resources) > 5
        for entry in bundle["entry"]:
            assert entry["request"]["method"] == "POST"
            assert entry["fullUrl"] == f"urn:uuid:{entry['resource']['id']}"
            assert entry["resource"]["meta"]["tag"]
        references = _references(bundle)
        assert not [r for r in references if "?" in r], "no search URLs in references"
        own = {e["fullUrl"] for e in bundle["entry"]}
        directory_refs = {
            f"{r['resource']['resourceType']}/{r['resource']['id']}" for r in directory["entry"]
        }
        assert all(r in own or r in directory_refs for r in references)
    # Every resource, and the nesting, is valid FHIR (R4B models).
    Bundle.model_validate(collection)


def _references(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["reference"]] if isinstance(node.get("reference"), str) else []
        return found + [r for value in node.values() for r in _references(value)]
    if isinstance(node, list):
        return [r for item in node for r in _references(item)]
    return []


@pytest.mark.postgres
async def test_the_same_seed_gives_the_same_bytes_and_ndjson_the_same_resources(
    synthetic: SyntheticHarness,
) -> None:
    first = await generate(synthetic, size=3, seed=7, state="MA", age_min=30, age_max=60)
    second = await generate(synthetic, size=3, seed=7, state="MA", age_min=30, age_max=60)
    assert first.content == second.content
    other = await generate(synthetic, size=3, seed=8, state="MA", age_min=30, age_max=60)
    assert other.content != first.content

    ndjson = await generate(
        synthetic, size=3, seed=7, state="MA", age_min=30, age_max=60, format="ndjson"
    )
    assert ndjson.headers["content-type"] == "application/fhir+ndjson"
    lines = [orjson.loads(line) for line in ndjson.content.splitlines()]
    bundled = [
        entry["resource"] for inner in first.json()["entry"] for entry in inner["resource"]["entry"]
    ]
    assert Counter(r["resourceType"] for r in lines) == Counter(r["resourceType"] for r in bundled)
    assert {r["id"] for r in lines} == {r["id"] for r in bundled}
    patients = [r for r in lines if r["resourceType"] == "Patient"]
    assert len(patients) == 3
    assert {p["address"][0]["state"] for p in patients} == {"MA"}


async def test_without_a_seed_one_is_drawn_and_reported(synthetic: SyntheticHarness) -> None:
    drawn = await generate(synthetic, size=2)
    seed = int(drawn.headers["x-synthetic-seed"])
    assert 0 <= seed < 2**63
    again = await generate(synthetic, size=2, seed=seed)
    assert again.content == drawn.content


@pytest.mark.postgres
async def test_synchronous_runs_are_audited_and_counted(synthetic: SyntheticHarness) -> None:
    await generate(synthetic, size=5, seed=1)
    await generate(synthetic, size=2, seed=1, format="ndjson")
    assert (await synthetic.audit_actions()).count("synthetic.generate") == 2
    metrics = (await synthetic.http.get("/metrics")).text
    assert 'medmesh_synthetic_patients_generated_total{mode="sync"} 7.0' in metrics


@pytest.mark.postgres
async def test_realism_report_of_a_small_run(synthetic: SyntheticHarness) -> None:
    response = await synthetic.http.post(
        "/v1/realism", json={"size": 200, "seed": 5}, headers=synthetic.headers()
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["seed"] == 5
    assert answer["options"]["size"] == 200
    assert answer["report"]
    assert "hypertension" in answer["text"]
    too_large = await synthetic.http.post(
        "/v1/realism", json={"size": 2001, "seed": 5}, headers=synthetic.headers()
    )
    assert too_large.status_code == 400
    assert too_large.json()["code"] == "size_above_limit"
    assert "synthetic.realism" in await synthetic.audit_actions()
