"""phi killed with SIGKILL in the middle of bulk writes, then started again (issue 18).

Real auth and phi processes, the NDJSON inputs served by a real HTTP server. A ``$import`` job
killed part-way resumes on start and reports exactly what is stored: every line once, one
version each, its index rows with it. A transaction Bundle killed while phi audits and writes
it is wholly absent afterwards. Either way phi's audit chain verifies. The kill is timed by
the state phi reports (progress, audit records), never by a clock.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.e2e.test_phi_process import MEDMESH, _cli, _wait_ready, free_port

pytestmark = pytest.mark.e2e

PATIENTS = 50
OBSERVATIONS = 12_000
BUNDLE_ENTRIES = 5_000


@dataclass
class Phi:
    url: str
    env: dict[str, str]
    var: Path
    token: str
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        port = self.url.rsplit(":", 1)[1]
        with (self.var / "phi.stderr").open("ab") as stderr:
            self.process = subprocess.Popen(
                [*MEDMESH, "serve", "phi", "--port", port, "--migrate"],
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        _wait_ready(self.url, self.process, self.var / "phi.log")

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()  # SIGKILL: no drain, no shutdown, no flush
        self.process.wait(30)

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Content-Type": "application/fhir+json"}

    def count(self, sql: str, *params: Any) -> int:
        with sqlite3.connect(f"file:{self.var / 'phi.db'}?mode=ro", uri=True) as db:
            return int(db.execute(sql, params).fetchone()[0])

    def audited(self, action: str) -> int:
        with sqlite3.connect(f"file:{self.var / 'phi-audit.db'}?mode=ro", uri=True) as db:
            found = db.execute("SELECT count(*) FROM audit_log WHERE action = ?", (action,))
            return int(found.fetchone()[0])


@pytest.fixture
def phi(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Phi]:
    exports = tmp_path / "exports"
    exports.mkdir()
    files_port, auth_port, phi_port = free_port(), free_port(), free_port()
    files_url = f"http://127.0.0.1:{files_port}/"
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
    }
    phi_env = {
        **base,
        "MEDMESH_PHI_VAR_DIR": str(tmp_path),
        "MEDMESH_PHI_ISSUER": auth_url,
        "MEDMESH_PHI_DRAIN_SECONDS": "0",
        "MEDMESH_PHI_LOG_FILE": str(tmp_path / "phi.log"),
        "MEDMESH_PHI_IMPORT_URL_PREFIXES": files_url,
        # Two workers (the default is one): each is checked, and one stopped while one goes on.
        "MEDMESH_PHI_IMPORT_WORKERS": "2",
    }
    files = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(files_port), "--bind", "127.0.0.1"],
        cwd=exports,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    auth = subprocess.Popen(
        [*MEDMESH, "serve", "auth", "--port", str(auth_port), "--migrate"],
        env=auth_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    running = Phi(phi_url, phi_env, tmp_path, token="")
    try:
        _wait_ready(auth_url, auth, tmp_path / "auth.log")
        boot = _cli(auth_env, "admin", "bootstrap")
        assert boot.returncode == 0, boot.stderr
        secret = next(
            line.split("secret: ")[1]
            for line in boot.stdout.splitlines()
            if line.startswith("client demo-service secret: ")
        )
        issued = httpx.post(
            auth_url + "/oauth/token",
            data={"grant_type": "client_credentials", "scope": "system/*.cruds"},
            auth=("demo-service", secret),
            timeout=30,
        )
        assert issued.status_code == 200, issued.text
        running.token = issued.json()["access_token"]
        running.start()
        yield running
    finally:
        if running.process is not None and running.process.poll() not in (None, -signal.SIGKILL):
            # phi ended by itself: its exit status and what it said go with the test's report.
            stderr = running.var / "phi.stderr"
            said = stderr.read_text(errors="replace") if stderr.exists() else ""
            request.node.add_report_section(
                "teardown", "phi", f"phi exited with {running.process.returncode}\n{said}"
            )
        for process in (running.process, auth, files):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(10)


def _observation(number: int) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": f"obs-{number}",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": f"Patient/pat-{number % PATIENTS}"},
        "effectiveDateTime": "2026-01-02T03:04:05Z",
        "valueQuantity": {"value": 60 + number % 40, "unit": "/min"},
    }


def _write_exports(folder: Path) -> None:
    patients = [
        {"resourceType": "Patient", "id": f"pat-{n}", "name": [{"family": f"Kill{n}"}]}
        for n in range(PATIENTS)
    ]
    (folder / "Patient.ndjson").write_bytes(b"\n".join(orjson.dumps(p) for p in patients))
    lines = (orjson.dumps(_observation(n)) for n in range(OBSERVATIONS))
    (folder / "Observation.ndjson").write_bytes(b"\n".join(lines))


def _kickoff(files_url: str) -> dict[str, Any]:
    return {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "inputFormat", "valueCode": "application/fhir+ndjson"},
            *(
                {
                    "name": "input",
                    "part": [
                        {"name": "type", "valueCode": kind},
                        {"name": "url", "valueUri": f"{files_url}{kind}.ndjson"},
                    ],
                }
                for kind in ("Patient", "Observation")
            ),
        ],
    }


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (Linux: from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _running(pid: int) -> bool:
    """Whether ``pid`` is a live process (not gone, not a zombie)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def _stored_of(progress: str) -> int:
    # "1 of 2 files, 1050 resources stored"
    return int(progress.split(", ")[1].split(" ")[0])


def test_an_import_killed_mid_file_resumes_and_reports_exactly_what_is_stored(phi: Phi) -> None:
    _write_exports(phi.var / "exports")
    files_url = phi.env["MEDMESH_PHI_IMPORT_URL_PREFIXES"]
    kicked = httpx.post(
        f"{phi.url}/fhir/$import", json=_kickoff(files_url), headers=phi.headers(), timeout=30
    )
    assert kicked.status_code == 202, kicked.text
    status_url = kicked.headers["content-location"]

    # Kill once the Observation file has committed chunks, while the job still runs.
    while True:
        polled = httpx.get(status_url, headers=phi.headers(), timeout=30)
        assert polled.status_code == 202, "the job finished before it could be killed"
        if _stored_of(polled.headers["x-progress"]) > PATIENTS:
            break
        time.sleep(0.05)
    assert phi.process is not None
    workers = _children(phi.process.pid)
    assert workers, "the import runs without its preparation workers"
    phi.kill()
    # The workers die with the service: none is left running, orphaned.
    deadline = time.monotonic() + 30
    while (left := [pid for pid in workers if _running(pid)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert left == []
    job_id = status_url.rsplit("/", 1)[1]
    assert (
        phi.count(
            "SELECT count(*) FROM import_jobs WHERE id = ? AND status = ?", job_id, "in-progress"
        )
        == 1
    )
    stored_at_kill = phi.count("SELECT count(*) FROM resources")
    assert PATIENTS < stored_at_kill < PATIENTS + OBSERVATIONS
    # Nothing half-written: every stored resource has its one version and its index rows.
    assert phi.count("SELECT count(*) FROM resource_versions") == stored_at_kill
    assert (
        phi.count("SELECT count(DISTINCT resource_id) FROM search_references")
        == stored_at_kill - PATIENTS
    )

    phi.start()  # the unfinished job resumes on start
    while (polled := httpx.get(status_url, headers=phi.headers(), timeout=30)).status_code == 202:
        time.sleep(0.2)
    assert polled.status_code == 200, polled.text
    report = polled.json()
    assert [(o["type"], o["count"], o["rejected"], o["lines"]) for o in report["output"]] == [
        ("Patient", PATIENTS, 0, PATIENTS),
        ("Observation", OBSERVATIONS, 0, OBSERVATIONS),
    ]
    total = PATIENTS + OBSERVATIONS
    assert phi.count("SELECT count(*) FROM resources") == total
    assert phi.count("SELECT count(*) FROM resource_versions") == total  # none stored twice
    assert phi.count("SELECT max(version) FROM resources") == 1
    assert phi.count("SELECT count(DISTINCT resource_id) FROM search_references") == OBSERVATIONS
    last = httpx.get(f"{phi.url}/fhir/Observation/obs-{OBSERVATIONS - 1}", headers=phi.headers())
    assert (last.status_code, last.json()["subject"]) == (200, {"reference": "Patient/pat-49"})
    phi.kill()
    verify = _cli(phi.env, "audit", "verify", "phi")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "audit trail intact" in verify.stdout


def test_a_transaction_killed_while_it_is_written_is_wholly_absent(phi: Phi) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:0b0d5f0e-58a1-4c38-9a55-3a4f2c0d0001",
                "resource": {"resourceType": "Patient", "name": [{"family": "Killed"}]},
                "request": {"method": "POST", "url": "Patient"},
            },
            *(
                {
                    "resource": {
                        **{k: v for k, v in _observation(n).items() if k != "id"},
                        "subject": {"reference": "urn:uuid:0b0d5f0e-58a1-4c38-9a55-3a4f2c0d0001"},
                    },
                    "request": {"method": "POST", "url": "Observation"},
                }
                for n in range(BUNDLE_ENTRIES - 1)
            ),
        ],
    }
    answers: list[Any] = []

    def post() -> None:
        try:
            answers.append(
                httpx.post(f"{phi.url}/fhir", json=bundle, headers=phi.headers(), timeout=600)
            )
        except httpx.HTTPError as exc:
            answers.append(exc)

    poster = threading.Thread(target=post)
    poster.start()
    # Its creates are audited before they are written: kill once the first records are durable.
    while phi.audited("fhir.create") == 0:
        assert poster.is_alive(), answers
        time.sleep(0.01)
    phi.kill()
    poster.join(60)

    [answer] = answers
    assert isinstance(answer, httpx.HTTPError)  # no answer: the process died mid-request
    assert phi.count("SELECT count(*) FROM resources") == 0
    assert phi.count("SELECT count(*) FROM resource_versions") == 0
    assert phi.count("SELECT count(*) FROM search_references") == 0
    assert phi.count("SELECT count(*) FROM search_strings") == 0

    phi.start()
    found = httpx.get(
        f"{phi.url}/fhir/Observation", params={"_summary": "count"}, headers=phi.headers()
    )
    assert (found.status_code, found.json()["total"]) == (200, 0)
    phi.kill()
    verify = _cli(phi.env, "audit", "verify", "phi")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "audit trail intact" in verify.stdout


def test_the_preparation_workers_hold_none_of_the_service_sockets(phi: Phi) -> None:
    """Workers forked from the serving phi let go of its sockets: a connection phi closes is
    closed, and phi's port is free once phi stops."""
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {k: v for k, v in _observation(n).items() if k != "id"},
                "request": {"method": "POST", "url": "Observation"},
            }
            for n in range(100)
        ],
    }
    with httpx.Client(timeout=60) as client:
        answer = client.post(f"{phi.url}/fhir", json=bundle, headers=phi.headers())
        assert answer.status_code == 200, answer.text
        assert phi.process is not None
        workers = _children(phi.process.pid)

        assert len(workers) == 2
        for pid in workers:
            held = [os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir() if _exists(fd)]
            assert [h for h in held if h.startswith("socket:")] == []
        served = [
            os.readlink(fd) for fd in Path(f"/proc/{phi.process.pid}/fd").iterdir() if _exists(fd)
        ]
        assert [h for h in served if h.startswith("socket:")] != []  # phi's own are its own

        # A worker stops on SIGTERM; phi then prepares transactions itself.
        os.kill(workers[0], signal.SIGTERM)
        deadline = time.monotonic() + 30
        while _running(workers[0]) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _running(workers[0])
        again = client.post(f"{phi.url}/fhir", json=bundle, headers=phi.headers())
        assert again.status_code == 200, again.text
        total = client.get(
            f"{phi.url}/fhir/Observation", params={"_summary": "count"}, headers=phi.headers()
        )
        assert total.json()["total"] == 200


def _exists(fd: Path) -> bool:
    try:
        os.readlink(fd)
    except OSError:
        return False
    return True
