"""Real auth-, phi- and synthetic-service processes: a job loads its patients into phi.

synthetic gets a token for phi with its own client (svc-synthetic, client_credentials) and
posts the run's Bundles; phi verifies it with auth's JWKS. The test then asks phi for every
resource type of the run and finds exactly what the job's manifest counts: phi-service accepted
every Bundle, and nothing was stored twice.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from medmesh.cli.seeding import seed_synthetic_patients
from tests.e2e.test_phi_process import MEDMESH, _cli, _wait_ready, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]
#: The issue's sample: 1,000 patients, with short histories to keep the run a few minutes.
PATIENTS = 1000
SEED = 4242


@dataclass
class Stack:
    phi_url: str
    synthetic_url: str
    token: str
    logs: Path


def _start(name: str, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*MEDMESH, "serve", name, "--port", str(port), "--migrate"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    ports = {name: free_port() for name in ("auth", "phi", "synthetic")}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    base = {
        k: v
        for k, v in os.environ.items()  # noqa: TID251 - the processes inherit PATH, HOME ...
        if not k.startswith("MEDMESH_")
    }

    def env_of(name: str, **extra: str) -> dict[str, str]:
        prefix = f"MEDMESH_{name.upper()}_"
        return {
            **base,
            prefix + "VAR_DIR": str(tmp_path),
            prefix + "ISSUER": urls["auth"],
            prefix + "DRAIN_SECONDS": "0",
            prefix + "LOG_FILE": str(tmp_path / f"{name}.log"),
            **{prefix + key: value for key, value in extra.items()},
        }

    auth_env = env_of("auth", ARGON2_MEMORY_KIB="1024", ARGON2_TIME_COST="1")
    processes: list[subprocess.Popen[bytes]] = []
    try:
        processes.append(_start("auth", ports["auth"], auth_env))
        _wait_ready(urls["auth"], processes[-1], tmp_path / "auth.log")
        boot = _cli(auth_env, "admin", "bootstrap")
        assert boot.returncode == 0, boot.stderr
        secrets = dict(re.findall(r"client (\S+) secret: (\S+)", boot.stdout))
        processes.append(_start("phi", ports["phi"], env_of("phi")))
        _wait_ready(urls["phi"], processes[-1], tmp_path / "phi.log")
        synthetic_env = env_of(
            "synthetic",
            PHI_URL=urls["phi"],
            PHI_CLIENT_SECRET=secrets["svc-synthetic"],
            MAX_GENERATION_WORKERS="2",
        )
        processes.append(_start("synthetic", ports["synthetic"], synthetic_env))
        _wait_ready(urls["synthetic"], processes[-1], tmp_path / "synthetic.log")
        # A developer's backend: it may generate, and read phi to check the result.
        issued = httpx.post(
            urls["auth"] + "/oauth/token",
            data={"grant_type": "client_credentials", "scope": "synthetic:generate system/*.rs"},
            auth=("demo-service", secrets["demo-service"]),
            timeout=30,
        )
        assert issued.status_code == 200, issued.text
        yield Stack(urls["phi"], urls["synthetic"], issued.json()["access_token"], tmp_path)
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(10)


def _wait_for_job(http: httpx.Client, url: str) -> dict[str, Any]:
    deadline = time.monotonic() + 1100
    while True:
        job: dict[str, Any] = http.get(url).json()
        if job["status"] in {"succeeded", "failed", "cancelled"}:
            return job
        assert time.monotonic() < deadline, f"job still {job['status']}: {job['progress']}"
        time.sleep(0.2)


def test_phi_accepts_every_bundle_of_a_synthetic_run(stack: Stack) -> None:
    headers = {"Authorization": f"Bearer {stack.token}"}
    with (
        httpx.Client(base_url=stack.synthetic_url, headers=headers, timeout=60) as synthetic,
        httpx.Client(base_url=stack.phi_url + "/fhir", headers=headers, timeout=60) as fhir,
    ):
        created = synthetic.post(
            "/v1/jobs",
            json={
                "size": PATIENTS,
                "seed": SEED,
                "years_of_history": 3,
                "formats": ["ndjson"],
                "target": "phi",
                "workers": 2,
            },
        )
        assert created.status_code == 202, created.text
        job = _wait_for_job(synthetic, created.headers["location"])
        assert job["status"] == "succeeded", job["error"]
        load = job["load"]
        assert load["patients_loaded"] == PATIENTS
        assert load["patients_failed"] == 0
        assert load["failures"] == []
        counts: dict[str, int] = job["output"]["counts"]
        assert load["resources_loaded"] + load["directory_resources"] == sum(counts.values())

        # phi holds exactly the run: every type, as many as generated.
        for resource_type, expected in sorted(counts.items()):
            found = fhir.get(resource_type, params={"_summary": "count"})
            assert found.status_code == 200, found.text
            assert found.json()["total"] == expected, resource_type

        # One patient, found by its MRN, has every Observation it was generated with.
        patients = synthetic.get(f"{job['url']}/output/ndjson/Patient.ndjson").content
        first = orjson.loads(patients.splitlines()[0])
        mrn = next(i for i in first["identifier"] if i["type"]["coding"][0]["code"] == "MR")
        observations = synthetic.get(f"{job['url']}/output/ndjson/Observation.ndjson").content
        generated = sum(
            orjson.loads(line)["subject"]["reference"] == f"Patient/{first['id']}"
            for line in observations.splitlines()
        )
        matched = fhir.get("Patient", params={"identifier": f"{mrn['system']}|{mrn['value']}"})
        assert matched.json()["total"] == 1
        stored_id = matched.json()["entry"][0]["resource"]["id"]
        stored = fhir.get(
            "Observation", params={"subject": f"Patient/{stored_id}", "_summary": "count"}
        )
        assert stored.json()["total"] == generated > 0

    log = (stack.logs / "synthetic.log").read_text()
    assert "job_finished" in log
    assert first["name"][0]["family"] not in log


def test_up_seeding_loads_its_patients_once(stack: Stack) -> None:
    """What `medmesh up` runs: a job through the API; a second run finds the patients there."""
    first = seed_synthetic_patients(stack.synthetic_url, stack.token, 5, poll=0.2)
    assert first.startswith("5 patients loaded into phi (")
    assert ", 0 already there (job job_" in first
    second = seed_synthetic_patients(stack.synthetic_url, stack.token, 5, poll=0.2)
    assert second.startswith("0 patients loaded into phi (0 resources")
    assert ", 5 already there (job job_" in second
    headers = {"Authorization": f"Bearer {stack.token}"}
    found = httpx.get(
        stack.phi_url + "/fhir/Patient", params={"_summary": "count"}, headers=headers, timeout=30
    )
    assert found.json()["total"] == 5
