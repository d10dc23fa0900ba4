"""synthetic-phi-service, run as a real process, exposes every metric its dashboard and the rules use."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from medmesh.platform.jwt import SigningKey
from medmesh.platform.testing import TokenFactory
from tests.deploy.emitted_metrics import base_name, owning_service
from tests.deploy.test_live_metrics import exposed_names, free_port
from tests.deploy.test_observability import used_metric_names
from tests.deploy.tools import ROOT

SECRET = "deploy-test-hs256-secret-of-at-least-32-bytes"
ISSUER = "http://auth.deploy.test"


@pytest.fixture
def synthetic_service(tmp_path: Path) -> Iterator[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDMESH_")}  # noqa: TID251
    port = free_port()
    env.update(
        {
            "MEDMESH_SYNTHETIC_VAR_DIR": str(tmp_path),
            "MEDMESH_SYNTHETIC_DRAIN_SECONDS": "0",
            "MEDMESH_LOG_LEVEL": "warning",
            "MEDMESH_SYNTHETIC_ISSUER": ISSUER,
            "MEDMESH_SYNTHETIC_JWT_HS256_SECRET": SECRET,
        }
    )
    log = (tmp_path / "synthetic.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "medmesh.cli",
            "serve",
            "synthetic",
            "--port",
            str(port),
            "--migrate",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (tmp_path / "synthetic.log").read_text()
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "synthetic-service did not become ready"
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.mark.timeout(180)
def test_synthetic_exposes_every_metric_its_dashboard_and_rules_use(synthetic_service: str) -> None:
    tokens = TokenFactory(ISSUER)
    tokens.key = SigningKey.hs256(SECRET)
    headers = tokens.headers("synthetic:generate", audience="medmesh-synthetic")
    with httpx.Client(base_url=synthetic_service, headers=headers, timeout=60) as http:
        assert http.post("/v1/generate", json={"size": 2, "seed": 1}).status_code == 200
        created = http.post("/v1/jobs", json={"size": 3, "seed": 1})
        assert created.status_code == 202, created.text
        deadline = time.monotonic() + 120
        while (job := http.get(created.headers["location"]).json())["status"] != "succeeded":
            assert job["status"] in {"queued", "running"}, job
            assert time.monotonic() < deadline, job
            time.sleep(0.2)
        response = http.get("/metrics")
    assert response.status_code == 200
    exposed = exposed_names(response.text)

    wanted = {
        name
        for name in used_metric_names()
        if owning_service(base_name(name)) in {None, "synthetic"}
    }
    assert "medmesh_synthetic_jobs_finished_total" in wanted
    missing = sorted(
        name for name in wanted if name not in exposed and base_name(name) not in exposed
    )
    assert missing == []
    assert 'medmesh_synthetic_jobs_finished_total{status="succeeded"} 1.0' in response.text
    assert 'medmesh_synthetic_patients_generated_total{mode="sync"} 2.0' in response.text
    assert 'route="/v1/jobs/{job_id}"' in response.text
