"""Every route needs a valid token for synthetic with the scope synthetic:generate."""

from __future__ import annotations

import pytest

from tests.synthetic.api.conftest import SyntheticHarness

ROUTES = [
    ("POST", "/v1/generate", {"size": 1, "seed": 1}),
    ("POST", "/v1/realism", {"size": 1, "seed": 1}),
    ("POST", "/v1/jobs", {"size": 1, "seed": 1}),
    ("GET", "/v1/jobs", None),
    ("GET", "/v1/jobs/job_0123", None),
    ("POST", "/v1/jobs/job_0123/cancel", None),
    ("GET", "/v1/jobs/job_0123/output/manifest.json", None),
    ("GET", "/v1/jobs/job_0123/realism", None),
]


@pytest.mark.postgres
@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
async def test_no_token_is_401_and_a_token_without_the_scope_is_403(
    synthetic: SyntheticHarness, method: str, path: str, body: dict[str, int] | None
) -> None:
    anonymous = await synthetic.http.request(method, path, json=body)
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == "application/problem+json"
    assert anonymous.headers["www-authenticate"].startswith("Bearer")

    fhir_only = await synthetic.http.request(
        method, path, json=body, headers=synthetic.headers("system/*.cruds")
    )
    assert fhir_only.status_code == 403
    problem = fhir_only.json()
    assert problem["code"] == "insufficient_scope"
    assert "synthetic:generate" in problem["detail"]

    other_service = await synthetic.http.request(
        method,
        path,
        json=body,
        headers=synthetic.tokens.headers("synthetic:generate", audience="medmesh-phi"),
    )
    assert other_service.status_code == 401
    assert other_service.json()["code"] == "invalid_token"


@pytest.mark.postgres
async def test_a_job_is_seen_by_its_owner_and_admins_only(synthetic: SyntheticHarness) -> None:
    job = await synthetic.start_job(size=2, seed=3, formats=["ndjson"])
    stranger = synthetic.headers(sub="someone-else")
    admin = synthetic.headers(sub="the-admin", roles=["admin"])

    assert (await synthetic.http.get(job["url"], headers=stranger)).status_code == 404
    refused = await synthetic.http.post(f"{job['url']}/cancel", headers=stranger)
    assert refused.status_code == 404
    assert refused.json()["code"] == "job_not_found"
    listed = (await synthetic.http.get("/v1/jobs", headers=stranger)).json()
    assert listed["data"] == []

    assert (await synthetic.http.get(job["url"], headers=admin)).status_code == 200
    seen_by_admin = (await synthetic.http.get("/v1/jobs", headers=admin)).json()
    assert [j["id"] for j in seen_by_admin["data"]] == [job["id"]]
    await synthetic.wait_for(job["id"])


async def test_operations_routes_need_no_token(synthetic: SyntheticHarness) -> None:
    assert (await synthetic.http.get("/healthz")).json() == {"status": "ok"}
    assert (await synthetic.http.get("/readyz")).json() == {"status": "ready"}
    metrics = (await synthetic.http.get("/metrics")).text
    assert 'medmesh_synthetic_jobs_finished_total{status="failed"} 0.0' in metrics
    spec = (await synthetic.http.get("/openapi.json")).json()
    assert {"/v1/generate", "/v1/jobs", "/v1/jobs/{job_id}/output/{name}"} <= set(spec["paths"])
