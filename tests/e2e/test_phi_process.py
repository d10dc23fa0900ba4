"""Real auth-service and phi-service processes, driven by the FHIR client library fhirpy.

auth issues a client_credentials token to the bootstrapped ``demo-service`` client; phi
verifies it with auth's JWKS (fetched over HTTP, as in production). fhirpy then creates,
reads, updates, searches, pages and posts a transaction Bundle.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import fhirpy
import httpx
import pytest
from fhirpy.base.exceptions import ResourceNotFound

pytestmark = pytest.mark.e2e

MEDMESH = [sys.executable, "-m", "medmesh.cli"]
FAMILY = "Zyxwellington"
PHONE = "+1-617-555-0142"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MEDMESH, *args], env=env, capture_output=True, text=True, timeout=120)


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, log.read_text() if log.exists() else "exited"
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"{url} did not become ready"
        time.sleep(0.1)


@dataclass
class Stack:
    auth_url: str
    phi_url: str
    phi_env: dict[str, str]
    phi: subprocess.Popen[bytes]
    token: str


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    auth_port, phi_port = free_port(), free_port()
    auth_url, phi_url = f"http://127.0.0.1:{auth_port}", f"http://127.0.0.1:{phi_port}"
    base = {
        k: v
        for k, v in os.environ.items()  # noqa: TID251 - the processes inherit PATH, HOME ...
        if not k.startswith("MEDMESH_")
    }
    auth_env = {
        **base,
        "MEDMESH_AUTH_VAR_DIR": str(tmp_path),
        "MEDMESH_AUTH_ISSUER": auth_url,
        "MEDMESH_AUTH_DRAIN_SECONDS": "0",
        "MEDMESH_AUTH_ARGON2_MEMORY_KIB": "1024",
        "MEDMESH_AUTH_ARGON2_TIME_COST": "1",
        "MEDMESH_AUTH_LOG_FILE": str(tmp_path / "auth.log"),
    }
    # phi knows auth only by its issuer URL: it fetches the JWKS from there.
    phi_env = {
        **base,
        "MEDMESH_PHI_VAR_DIR": str(tmp_path),
        "MEDMESH_PHI_ISSUER": auth_url,
        "MEDMESH_PHI_DRAIN_SECONDS": "0",
        "MEDMESH_PHI_LOG_FILE": str(tmp_path / "phi.log"),
    }
    processes = []
    try:
        for name, port, env in (("auth", auth_port, auth_env), ("phi", phi_port, phi_env)):
            process = subprocess.Popen(
                [*MEDMESH, "serve", name, "--port", str(port), "--migrate"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            processes.append(process)
            _wait_ready(f"http://127.0.0.1:{port}", process, tmp_path / f"{name}.log")
        boot = _cli(auth_env, "admin", "bootstrap")
        assert boot.returncode == 0, boot.stderr
        secrets = dict(re.findall(r"client (\S+) secret: (\S+)", boot.stdout))
        issued = httpx.post(
            auth_url + "/oauth/token",
            data={"grant_type": "client_credentials", "scope": "system/*.cruds"},
            auth=("demo-service", secrets["demo-service"]),
            timeout=30,
        )
        assert issued.status_code == 200, issued.text
        yield Stack(auth_url, phi_url, phi_env, processes[1], issued.json()["access_token"])
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait(10)


def observation(patient_ref: str, value: int) -> dict[str, object]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": patient_ref},
        "effectiveDateTime": f"2024-03-{value:02d}T08:00:00Z",
        "valueQuantity": {
            "value": 60 + value,
            "unit": "/min",
            "system": "http://unitsofmeasure.org",
        },
    }


async def test_fhirpy_against_running_services(stack: Stack) -> None:
    client = fhirpy.AsyncFHIRClient(
        stack.phi_url + "/fhir",
        authorization=f"Bearer {stack.token}",
        extra_headers={"Content-Type": "application/fhir+json"},
    )

    # create
    patient = client.resource(
        "Patient",
        name=[{"family": FAMILY, "given": ["Ada"]}],
        gender="female",
        birthDate="1970-04-01",
        telecom=[{"system": "phone", "value": PHONE}],
    )
    await patient.save()
    assert patient.id
    assert patient["meta"]["versionId"] == "1"

    # read
    read = await client.reference("Patient", patient.id).to_resource()
    assert read["name"][0]["family"] == FAMILY
    assert read["telecom"][0]["value"] == PHONE

    # update (PUT of the whole resource: version 2)
    read["gender"] = "other"
    await read.save()
    assert read["meta"]["versionId"] == "2"
    again = await client.reference("Patient", patient.id).to_resource()
    assert again["gender"] == "other"

    # search: starts-with, accent- and case-insensitive, through the blind index
    found = await client.resources("Patient").search(family=FAMILY[:5].lower()).fetch()
    assert [p.id for p in found] == [patient.id]
    assert await client.resources("Patient").search(family="nobody-like-that").fetch() == []

    # paging: 7 Observations, 3 per page, followed through the Bundle's next links
    for value in range(1, 8):
        fields = observation(f"Patient/{patient.id}", value)
        await client.resource(str(fields.pop("resourceType")), **fields).save()
    search = client.resources("Observation").search(subject=f"Patient/{patient.id}").limit(3)
    first_page = await search.fetch()
    assert len(first_page) == 3
    everything = await search.fetch_all()
    assert len(everything) == 7
    assert len({o.id for o in everything}) == 7

    # transaction: urn:uuid references rewritten to the ids the server assigns
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:6f1f5b8e-2d7c-4a55-9b0e-2f2f3c6e8a01",
                "resource": {"resourceType": "Patient", "name": [{"family": "Transactor"}]},
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "fullUrl": "urn:uuid:6f1f5b8e-2d7c-4a55-9b0e-2f2f3c6e8a02",
                "resource": observation("urn:uuid:6f1f5b8e-2d7c-4a55-9b0e-2f2f3c6e8a01", 9),
                "request": {"method": "POST", "url": "Observation"},
            },
        ],
    }
    response = await client.execute("", method="post", data=bundle)
    assert response["type"] == "transaction-response"
    statuses = [entry["response"]["status"] for entry in response["entry"]]
    assert all(status.startswith("201") for status in statuses), statuses
    new_patient = response["entry"][0]["response"]["location"].split("/")[1]
    new_observation = response["entry"][1]["response"]["location"].split("/")[1]
    stored = await client.reference("Observation", new_observation).to_resource()
    assert stored["subject"]["reference"] == f"Patient/{new_patient}"

    # errors come back as FHIR errors the library understands
    with pytest.raises(ResourceNotFound):
        await client.reference("Patient", "no-such-patient").to_resource()

    async with httpx.AsyncClient() as http:
        metrics = (await http.get(stack.phi_url + "/metrics", timeout=5)).text
    assert 'route="/fhir/{resource_type}/{resource_id}"' in metrics

    # Everything above is in phi's audit trail, and the chain is intact.
    stack.phi.send_signal(signal.SIGTERM)
    assert stack.phi.wait(30) == 0
    verify = _cli(stack.phi_env, "audit", "verify", "phi")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "audit trail intact" in verify.stdout
    log = await asyncio.to_thread(Path(stack.phi_env["MEDMESH_PHI_LOG_FILE"]).read_text)
    assert FAMILY not in log
    assert PHONE not in log
