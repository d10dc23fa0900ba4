"""Revocation across processes: real auth-service and phi-service processes.

phi starts before auth is up and becomes ready once auth answers; it verifies tokens with auth's
JWKS and pulls auth's revocation list over HTTP. An access token revoked at auth, and the token
of a user disabled at auth, are then refused by phi (within the propagation bound; the test
waits for the refusal with a generous limit and never measures how long it took), while a
token nobody revoked keeps working.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_phi_process import free_port

pytestmark = pytest.mark.e2e

MEDMESH = [sys.executable, "-m", "medmesh.cli"]
ADMIN_PASSWORD = "e2e admin password, long enough"
PASSWORD = "a long enough password"
FHIR_JSON = {"Accept": "application/fhir+json"}


def _ready(url: str) -> bool:
    try:
        return httpx.get(url + "/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _wait_for(condition: Callable[[], bool], what: str, process: subprocess.Popen[bytes]) -> None:
    """Wait for ``condition`` for at most 60 s (a generous bound for a busy machine)."""
    deadline = time.monotonic() + 60
    while not condition():
        assert process.poll() is None, f"{what}: the process exited"
        assert time.monotonic() < deadline, f"{what}: not within 60 s"
        time.sleep(0.1)


@dataclass
class Stack:
    auth_url: str
    phi_url: str
    secrets: dict[str, str]
    processes: list[subprocess.Popen[bytes]]

    def token(self, client_id: str, **form: str) -> dict[str, str]:
        issued = httpx.post(
            self.auth_url + "/oauth/token",
            data=form,
            auth=(client_id, self.secrets[client_id]),
            timeout=30,
        )
        assert issued.status_code == 200, issued.text
        body: dict[str, str] = issued.json()
        return body

    def read_patients(self, access_token: str) -> httpx.Response:
        return httpx.get(
            self.phi_url + "/fhir/Patient",
            params={"_count": "1"},
            headers={**FHIR_JSON, "Authorization": f"Bearer {access_token}"},
            timeout=30,
        )


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
        "MEDMESH_AUTH_BOOTSTRAP_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "MEDMESH_AUTH_LOG_FILE": str(tmp_path / "auth.log"),
    }
    # phi knows auth only by its issuer URL: the JWKS and the revocation list are found there.
    phi_env = {
        **base,
        "MEDMESH_PHI_VAR_DIR": str(tmp_path),
        "MEDMESH_PHI_ISSUER": auth_url,
        "MEDMESH_PHI_DRAIN_SECONDS": "0",
        "MEDMESH_PHI_LOG_FILE": str(tmp_path / "phi.log"),
    }
    processes: list[subprocess.Popen[bytes]] = []

    def start(name: str, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [*MEDMESH, "serve", name, "--port", str(port), "--migrate"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        processes.append(process)
        return process

    try:
        phi = start("phi", phi_port, phi_env)

        def phi_answers() -> bool:
            try:
                return httpx.get(phi_url + "/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        _wait_for(phi_answers, "phi answers", phi)
        assert not _ready(phi_url), "phi must not be ready before auth answers"
        auth = start("auth", auth_port, auth_env)
        _wait_for(lambda: _ready(auth_url), "auth ready", auth)
        _wait_for(lambda: _ready(phi_url), "phi ready once auth answers", phi)
        boot = subprocess.run(
            [*MEDMESH, "admin", "bootstrap"],
            env=auth_env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert boot.returncode == 0, boot.stderr
        secrets = dict(re.findall(r"client (\S+) secret: (\S+)", boot.stdout))
        yield Stack(auth_url, phi_url, secrets, processes)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait(10)


def _refused_by_phi(stack: Stack, access_token: str) -> httpx.Response:
    """phi's answer once it refuses the token (asked for at most 30 s)."""
    deadline = time.monotonic() + 30
    while True:
        response = stack.read_patients(access_token)
        if response.status_code != 200 or time.monotonic() > deadline:
            return response
        time.sleep(0.1)


def assert_revoked(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == (
        'Bearer realm="medmesh", error="invalid_token", error_description="token has been revoked"'
    )
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert [issue["diagnostics"] for issue in outcome["issue"]] == ["token has been revoked"]


def test_phi_refuses_a_revoked_token_and_a_disabled_users_token(stack: Stack) -> None:
    service = stack.token("demo-service", grant_type="client_credentials", scope="system/*.rs")
    cli = "medmesh-cli"
    admin = stack.token(cli, grant_type="password", username="admin", password=ADMIN_PASSWORD)
    admin_headers = {"Authorization": f"Bearer {admin['access_token']}"}
    created = httpx.post(
        stack.auth_url + "/admin/users",
        json={"username": "dr.e2e", "password": PASSWORD, "roles": ["clinician"]},
        headers=admin_headers,
        timeout=30,
    )
    assert created.status_code == 201, created.text
    clinician = stack.token(cli, grant_type="password", username="dr.e2e", password=PASSWORD)
    untouched = stack.token("demo-service", grant_type="client_credentials", scope="system/*.rs")
    for token in (service, clinician, untouched):
        assert stack.read_patients(token["access_token"]).status_code == 200

    revoked = httpx.post(
        stack.auth_url + "/oauth/revoke",
        data={"token": service["access_token"]},
        auth=("demo-service", stack.secrets["demo-service"]),
        timeout=30,
    )
    assert revoked.status_code == 200
    disabled = httpx.patch(
        f"{stack.auth_url}/admin/users/{created.json()['id']}",
        json={"disabled": True},
        headers=admin_headers,
        timeout=30,
    )
    assert disabled.status_code == 200

    assert_revoked(_refused_by_phi(stack, service["access_token"]))
    assert_revoked(_refused_by_phi(stack, clinician["access_token"]))
    assert stack.read_patients(untouched["access_token"]).status_code == 200
