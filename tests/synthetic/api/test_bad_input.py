"""Bad input answers 400 with a problem+json that says what is wrong; nothing is queued."""

from __future__ import annotations

from typing import Any

import pytest

from tests.synthetic.api.conftest import SyntheticHarness

BAD_GENERATIONS: list[tuple[dict[str, Any], str, str]] = [
    ({"size": 0}, "invalid_request", "size"),
    ({"size": -5}, "invalid_request", "size"),
    ({"size": 51}, "size_above_limit", "synchronous limit"),
    ({"size": 1_000_000}, "size_above_limit", "POST /v1/jobs"),
    ({"size": 5, "cohorts": ["unicornitis:2"]}, "invalid_options", "known conditions"),
    ({"size": 5, "cohorts": [{"condition": "nope", "count": 1}]}, "invalid_options", "diabetes"),
    ({"size": 5, "cohorts": ["diabetes:9"]}, "invalid_options", "more patients than size"),
    ({"size": 5, "cohorts": ["diabetes:two"]}, "invalid_options", "integer"),
    ({"size": 5, "seed": -1}, "invalid_request", "seed"),
    ({"size": 5, "seed": 2**63}, "invalid_request", "seed"),
    ({"size": 5, "seed": "forty-two"}, "invalid_request", "seed"),
    ({"size": 5, "seed": 4.5}, "invalid_request", "seed"),
    ({"size": 5, "format": "xml"}, "invalid_request", "format"),
    ({"size": 5, "age_min": 60, "age_max": 20}, "invalid_options", "age_min"),
    ({"size": 5, "state": "ZZ"}, "invalid_options", "state"),
    ({"size": 5, "sex": "x"}, "invalid_request", "sex"),
    ({"size": 5, "reference_date": "yesterday"}, "invalid_request", "reference_date"),
    ({"size": 5, "colour": "blue"}, "invalid_request", "colour"),
    ({"size": True}, "invalid_request", "size"),
]


@pytest.mark.postgres
@pytest.mark.parametrize(("body", "code", "says"), BAD_GENERATIONS)
async def test_bad_generation_options_are_400(
    synthetic: SyntheticHarness, body: dict[str, Any], code: str, says: str
) -> None:
    # The realism report takes the same options (but no format, and a larger size).
    same_for_realism = code != "size_above_limit" and "format" not in body
    for path in ("/v1/generate", "/v1/realism") if same_for_realism else ("/v1/generate",):
        response = await synthetic.http.post(path, json=body, headers=synthetic.headers())
        assert response.status_code == 400, response.text
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["code"] == code
        assert says in problem["detail"]


@pytest.mark.postgres
async def test_bad_json_is_400(synthetic: SyntheticHarness) -> None:
    response = await synthetic.http.post(
        "/v1/generate",
        content=b'{"size": 3,',
        headers={**synthetic.headers(), "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request"


BAD_JOBS: list[tuple[dict[str, Any], str, str]] = [
    ({"size": 0}, "invalid_request", "size"),
    ({"size": 2_000_000}, "size_above_limit", "job limit"),
    ({"size": 10, "cohorts": ["dragon-pox:3"]}, "invalid_options", "known conditions"),
    ({"size": 10, "seed": -3}, "invalid_request", "seed"),
    ({"size": 10, "formats": ["pdf"]}, "invalid_request", "formats"),
    ({"size": 10, "formats": []}, "nothing_to_do", "at least one format or a target"),
    ({"size": 10, "target": "hapi"}, "invalid_request", "target"),
    ({"size": 10, "workers": 0}, "invalid_request", "workers"),
    ({"size": 10, "workers": 999}, "invalid_request", "workers must be"),
]


@pytest.mark.postgres
@pytest.mark.parametrize(("body", "code", "says"), BAD_JOBS)
async def test_bad_job_requests_are_400_and_queue_nothing(
    synthetic: SyntheticHarness, body: dict[str, Any], code: str, says: str
) -> None:
    response = await synthetic.http.post("/v1/jobs", json=body, headers=synthetic.headers())
    assert response.status_code == 400, response.text
    problem = response.json()
    assert problem["code"] == code
    assert says in problem["detail"]
    listed = await synthetic.http.get("/v1/jobs", headers=synthetic.headers())
    assert listed.json()["data"] == []


async def test_loading_phi_without_credentials_is_refused(synthetic: SyntheticHarness) -> None:
    response = await synthetic.http.post(
        "/v1/jobs", json={"size": 3, "target": "phi"}, headers=synthetic.headers()
    )
    assert response.status_code == 503
    problem = response.json()
    assert problem["code"] == "phi_not_configured"
    assert "MEDMESH_SYNTHETIC_PHI_CLIENT_SECRET" in problem["detail"]


@pytest.mark.postgres
async def test_unknown_jobs_and_files_are_404(synthetic: SyntheticHarness) -> None:
    headers = synthetic.headers()
    missing = await synthetic.http.get("/v1/jobs/job_doesnotexist", headers=headers)
    assert missing.status_code == 404
    assert missing.json()["code"] == "job_not_found"
    paged = await synthetic.http.get("/v1/jobs", params={"before": "job_nope"}, headers=headers)
    assert paged.status_code == 404
    bad_status = await synthetic.http.get("/v1/jobs", params={"status": "done"}, headers=headers)
    assert bad_status.status_code == 400
