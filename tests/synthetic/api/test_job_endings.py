"""Cancelled, interrupted and orphaned jobs: never reported complete, never left with files."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from medmesh.platform.db import utcnow
from medmesh.platform.testing import TokenFactory
from medmesh.synthetic.config import SyntheticSettings
from medmesh.synthetic.models import JobRow
from tests.synthetic.api.conftest import SyntheticHarness, run_synthetic, synthetic_settings_for

#: Large enough to be still running when the test acts on it.
LONG_RUN = {"size": 200_000, "seed": 5, "formats": ["ndjson"]}


def has_progress(job: dict[str, object]) -> bool:
    progress = job["progress"]
    assert isinstance(progress, dict)
    return job["status"] == "running" and progress["generated"] > 0


def has_started(job: dict[str, object]) -> bool:
    return job["status"] == "running"


def leaves_nothing(synthetic: SyntheticHarness, job_id: str) -> bool:
    folder = synthetic.output_dir / job_id
    return not (folder / "manifest.json").exists() and not any(
        p.is_file() for p in folder.rglob("*")
    )


@pytest.mark.postgres
async def test_cancelling_a_running_job_stops_it_and_deletes_its_files(
    synthetic: SyntheticHarness,
) -> None:
    job = await synthetic.start_job(**LONG_RUN)
    await synthetic.wait_for(job["id"], has_progress)
    assert any((synthetic.output_dir / job["id"]).rglob("*.ndjson"))

    response = await synthetic.http.post(
        f"/v1/jobs/{job['id']}/cancel", headers=synthetic.headers()
    )
    assert response.status_code == 202, response.text
    assert response.json()["cancel_requested"] is True

    ended = await synthetic.wait_for(job["id"])
    assert ended["status"] == "cancelled"
    assert ended["output"] is None
    assert 0 < ended["progress"]["generated"] < LONG_RUN["size"]
    assert leaves_nothing(synthetic, job["id"])
    manifest = await synthetic.http.get(
        f"/v1/jobs/{job['id']}/output/manifest.json", headers=synthetic.headers()
    )
    assert manifest.status_code == 409
    assert manifest.json()["code"] == "output_not_ready"

    again = await synthetic.http.post(f"/v1/jobs/{job['id']}/cancel", headers=synthetic.headers())
    assert again.status_code == 200
    assert again.json()["status"] == "cancelled"
    assert "synthetic.job.cancel" in await synthetic.audit_actions()


@pytest.mark.postgres
async def test_a_queued_job_is_cancelled_at_once_and_a_finished_one_cannot_be(
    synthetic: SyntheticHarness,
) -> None:
    running = await synthetic.start_job(**LONG_RUN)
    await synthetic.wait_for(running["id"], has_started)
    queued = await synthetic.start_job(size=3, seed=1)
    cancelled = await synthetic.http.post(
        f"/v1/jobs/{queued['id']}/cancel", headers=synthetic.headers()
    )
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["started_at"] is None

    await synthetic.http.post(f"/v1/jobs/{running['id']}/cancel", headers=synthetic.headers())
    assert (await synthetic.wait_for(running["id"]))["status"] == "cancelled"

    small = await synthetic.start_job(size=2, seed=2)
    assert (await synthetic.wait_for(small["id"]))["status"] == "succeeded"
    too_late = await synthetic.http.post(
        f"/v1/jobs/{small['id']}/cancel", headers=synthetic.headers()
    )
    assert too_late.status_code == 409
    assert too_late.json()["code"] == "job_finished"
    assert (await synthetic.job(queued["id"]))["status"] == "cancelled"


@pytest.mark.postgres
async def test_stopping_the_service_fails_its_running_job(
    synthetic_settings: SyntheticSettings, token_factory: TokenFactory
) -> None:
    async with run_synthetic(synthetic_settings, token_factory) as synthetic:
        job = await synthetic.start_job(**LONG_RUN)
        await synthetic.wait_for(job["id"], has_progress)
    async with run_synthetic(synthetic_settings, token_factory) as synthetic:
        ended = await synthetic.job(job["id"])
        assert ended["status"] == "failed"
        assert ended["error"].startswith("interrupted: the service stopped")
        assert ended["output"] is None
        assert leaves_nothing(synthetic, job["id"])


@pytest.mark.postgres
async def test_a_restarted_replica_fails_the_jobs_it_was_running(
    synthetic_settings: SyntheticSettings, token_factory: TokenFactory
) -> None:
    async with run_synthetic(synthetic_settings, token_factory) as before:
        job = await before.start_job(**LONG_RUN)
        await before.wait_for(job["id"], has_progress)
        # The replica comes back (same name) while its old process is gone: here the old app
        # is still running, so the test also sees it stop working on a job it no longer owns.
        async with run_synthetic(synthetic_settings, token_factory) as after:
            ended = await after.job(job["id"])
            assert ended["status"] == "failed"
            assert ended["error"].startswith("interrupted: the service restarted")
            await asyncio.sleep(1.0)
            still = await after.job(job["id"])
            assert still["status"] == "failed"
            assert still["error"] == ended["error"]
    assert leaves_nothing(before, job["id"])


@pytest.mark.postgres
async def test_a_job_whose_replica_stopped_reporting_is_failed(
    database_url: str, tmp_path: Path, token_factory: TokenFactory
) -> None:
    settings = synthetic_settings_for(database_url, tmp_path, job_stale_seconds=1.0)
    async with run_synthetic(settings, token_factory) as synthetic:
        long_ago = utcnow() - timedelta(hours=1)
        async with synthetic.app.state.database.unit_of_work() as session:
            session.add(
                JobRow(
                    id="job_of_a_dead_replica",
                    owner="user-1",
                    status="running",
                    cancel_requested=False,
                    options={"seed": 1, "size": 10},
                    formats=["ndjson"],
                    skip_existing=False,
                    workers=1,
                    total=10,
                    generated=3,
                    loaded=0,
                    created_at=long_ago,
                    started_at=long_ago,
                    heartbeat_at=long_ago,
                    worker="replica-that-died",
                )
            )
        ended = await synthetic.wait_for("job_of_a_dead_replica", within=30)
        assert ended["status"] == "failed"
        assert "stopped reporting" in ended["error"]
