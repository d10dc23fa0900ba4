"""phi-service, run as a real process, exposes every metric its dashboard and the rules use."""

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
def phi_service(tmp_path: Path) -> Iterator[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDMESH_")}  # noqa: TID251
    port = free_port()
    env.update(
        {
            "MEDMESH_PHI_VAR_DIR": str(tmp_path),
            "MEDMESH_PHI_DRAIN_SECONDS": "0",
            "MEDMESH_LOG_LEVEL": "warning",
            "MEDMESH_PHI_ISSUER": ISSUER,
            "MEDMESH_PHI_JWT_HS256_SECRET": SECRET,
        }
    )
    log = (tmp_path / "phi.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "medmesh.cli", "serve", "phi", "--port", str(port), "--migrate"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (tmp_path / "phi.log").read_text()
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "phi-service did not become ready"
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


def test_phi_exposes_every_metric_its_dashboard_and_rules_use(phi_service: str) -> None:
    tokens = TokenFactory(ISSUER)
    tokens.key = SigningKey.hs256(SECRET)
    headers = {
        **tokens.headers("system/*.cruds", audience="medmesh-phi"),
        "Content-Type": "application/fhir+json",
    }
    with httpx.Client(base_url=phi_service + "/fhir", headers=headers, timeout=10) as fhir:
        created = fhir.post("/Patient", json={"resourceType": "Patient", "gender": "other"})
        assert created.status_code == 201, created.text
        assert fhir.get(f"/Patient/{created.json()['id']}").status_code == 200
        assert fhir.get("/Patient", params={"gender": "other"}).status_code == 200
        assert fhir.get("/Nope/1").status_code == 404
    response = httpx.get(phi_service + "/metrics", timeout=5)
    assert response.status_code == 200
    exposed = exposed_names(response.text)

    wanted = {
        name for name in used_metric_names() if owning_service(base_name(name)) in {None, "phi"}
    }
    assert "medmesh_audit_records_total" in wanted
    missing = sorted(
        name for name in wanted if name not in exposed and base_name(name) not in exposed
    )
    assert missing == []
    assert 'route="/fhir/{resource_type}/{resource_id}"' in response.text
    assert 'medmesh_audit_records_total{service="phi"}' in response.text
