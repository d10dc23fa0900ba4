"""POST /v1/jobs to succeeded: progress, output files whose SHA-256 match the manifest, report."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import orjson
import pytest

from tests.synthetic.api.conftest import SyntheticHarness


async def download(synthetic: SyntheticHarness, url: str) -> bytes:
    response = await synthetic.http.get(url, headers=synthetic.headers())
    assert response.status_code == 200, f"{url}: {response.text}"
    return response.content


@pytest.mark.postgres
async def test_a_job_runs_to_succeeded_with_checksummed_downloads(
    synthetic: SyntheticHarness,
) -> None:
    created = await synthetic.http.post(
        "/v1/jobs",
        json={"size": 30, "seed": 11, "formats": ["ndjson", "bundle", "csv"], "workers": 2},
        headers=synthetic.headers(),
    )
    assert created.status_code == 202, created.text
    job = created.json()
    assert created.headers["location"] == f"/v1/jobs/{job['id']}"
    assert job["status"] == "queued"
    assert job["seed"] == 11
    assert job["options"]["size"] == 30
    assert job["progress"] == {
        "total": 30,
        "generated": 0,
        "loaded": 0,
        "patients_per_second": None,
        "eta_seconds": None,
    }

    done = await synthetic.wait_for(job["id"])
    assert done["status"] == "succeeded", done["error"]
    assert done["error"] is None
    assert done["progress"]["generated"] == 30
    assert done["finished_at"] >= done["started_at"] >= done["created_at"]
    output = done["output"]
    assert output["patients"] == 30
    assert output["counts"]["Patient"] == 30
    assert output["resources"] == sum(output["counts"].values())
    formats = {f["format"] for f in output["files"]}
    assert {"ndjson", "bundle", "csv"} <= formats

    # Every listed file downloads with the size and SHA-256 the job (and manifest) give.
    for listed in output["files"]:
        response = await synthetic.http.get(listed["url"], headers=synthetic.headers())
        assert response.status_code == 200, listed["url"]
        body = response.content
        assert len(body) == listed["bytes"]
        assert hashlib.sha256(body).hexdigest() == listed["sha256"]
        digest = base64.b64encode(bytes.fromhex(listed["sha256"])).decode()
        assert response.headers["repr-digest"] == f"sha-256=:{digest}:"
    manifest = orjson.loads(await download(synthetic, output["manifest_url"]))
    assert manifest["complete"] is True
    assert manifest["seed"] == 11
    assert {f["url"]: f["sha256"] for f in manifest["output"]} == {
        f["name"]: f["sha256"] for f in output["files"]
    }

    # NDJSON: one Patient line per patient, served as FHIR NDJSON.
    patients = await synthetic.http.get(
        f"/v1/jobs/{job['id']}/output/ndjson/Patient.ndjson", headers=synthetic.headers()
    )
    assert patients.headers["content-type"] == "application/fhir+ndjson"
    assert len(patients.content.splitlines()) == 30

    # Per-patient Bundles: listed by SHA256SUMS, downloadable by index, none past the end.
    sums = (await download(synthetic, f"/v1/jobs/{job['id']}/output/fhir/SHA256SUMS")).decode()
    expected = {name: digest for digest, name in (line.split("  ") for line in sums.splitlines())}
    assert len(expected) == 30
    bundle_url = output["patient_bundle_url"].replace("{index}", "0000007")
    seventh = await download(synthetic, bundle_url)
    assert hashlib.sha256(seventh).hexdigest() == expected["patient-0000007.json"]
    assert orjson.loads(seventh)["type"] == "transaction"
    past_the_end = await synthetic.http.get(
        output["patient_bundle_url"].replace("{index}", "0000030"), headers=synthetic.headers()
    )
    assert past_the_end.status_code == 404

    realism = await synthetic.http.get(output["realism_url"], headers=synthetic.headers())
    assert realism.status_code == 200
    assert realism.json() == manifest["realism"]

    listed_jobs = (await synthetic.http.get("/v1/jobs", headers=synthetic.headers())).json()
    assert [j["id"] for j in listed_jobs["data"]] == [job["id"]]
    actions = await synthetic.audit_actions()
    assert actions.count("synthetic.job.create") == 1
    assert actions.count("synthetic.job.download") >= len(output["files"]) + 3
    metrics = (await synthetic.http.get("/metrics")).text
    assert 'medmesh_synthetic_jobs_finished_total{status="succeeded"} 1.0' in metrics
    assert 'medmesh_synthetic_patients_generated_total{mode="job"} 30.0' in metrics


@pytest.mark.postgres
async def test_a_job_writes_what_the_synchronous_endpoint_answers(
    synthetic: SyntheticHarness,
) -> None:
    options: dict[str, Any] = {"size": 6, "seed": 99, "cohorts": ["diabetes:2"]}
    job = await synthetic.start_job(**options, formats=["bundle"])
    done = await synthetic.wait_for(job["id"])
    assert done["status"] == "succeeded", done["error"]
    answer = await synthetic.http.post(
        "/v1/generate",
        json={**options, "reference_date": done["options"]["reference_date"]},
        headers=synthetic.headers(),
    )
    inner = [orjson.dumps(entry["resource"]) for entry in answer.json()["entry"]]
    directory = await download(synthetic, f"/v1/jobs/{job['id']}/output/fhir/directory.json")
    assert orjson.loads(directory) == orjson.loads(inner[0])
    for index in range(6):
        written = await download(
            synthetic, f"/v1/jobs/{job['id']}/output/fhir/patient-{index:07d}.json"
        )
        assert orjson.loads(written) == orjson.loads(inner[index + 1])


PATHS_OUTSIDE = [
    "../manifest.json",
    "..%2F..%2Fsynthetic.db",
    "%2Fetc%2Fpasswd",
    "ndjson/../../../etc/passwd",
    "fhir/patient-0000001.json.bak",
    "fhir/patient-1.json",
    ".manifest.json.partial",
]


@pytest.mark.postgres
async def test_only_files_the_manifest_names_can_be_downloaded(
    synthetic: SyntheticHarness,
) -> None:
    job = await synthetic.start_job(size=2, seed=3, formats=["ndjson", "bundle"])
    assert (await synthetic.wait_for(job["id"]))["status"] == "succeeded"
    (synthetic.output_dir / job["id"] / "ndjson" / "secret.txt").write_text("not listed")
    for name in [*PATHS_OUTSIDE, "ndjson/secret.txt"]:
        response = await synthetic.http.get(
            f"/v1/jobs/{job['id']}/output/{name}", headers=synthetic.headers()
        )
        assert response.status_code == 404, name
        assert response.headers["content-type"] == "application/problem+json"
