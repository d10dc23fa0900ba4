"""The metrics that rules and dashboards use are the ones a running service exposes.

Starts auth-service as a real process (after `medmesh migrate auth`), reads its
/metrics and checks every medmesh_* name used for it, and every generic one.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.deploy.emitted_metrics import base_name, owning_service
from tests.deploy.test_observability import used_metric_names
from tests.deploy.tools import ROOT, VENV_BIN

SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_sum", "_count"),
    "summary": ("_sum", "_count"),
}
SAMPLE_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def exposed_names(text: str) -> set[str]:
    """Metric and series names of a Prometheus text exposition."""
    names: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()[:4]
            names.add(name)
            names.update(name + suffix for suffix in SUFFIXES.get(kind, ()))
        elif (sample := SAMPLE_NAME.match(line)) is not None:
            names.add(sample.group(0))
    return names


@pytest.fixture
def auth_service(tmp_path: Path) -> Iterator[str]:
    # A child process needs the parent's environment (PATH, HOME) plus its own.
    env = dict(os.environ)  # noqa: TID251
    env = {k: v for k, v in env.items() if not k.startswith("MEDMESH_")}
    env.update({"MEDMESH_AUTH_VAR_DIR": str(tmp_path), "MEDMESH_LOG_LEVEL": "warning"})
    cli = VENV_BIN / "medmesh"
    has_migrate = (
        cli.exists()
        and subprocess.run(
            [cli, "migrate", "--help"], env=env, capture_output=True, check=False, timeout=60
        ).returncode
        == 0
    )
    if has_migrate:
        migrated = subprocess.run(
            [cli, "migrate", "auth"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    port = free_port()
    log = (tmp_path / "auth.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "medmesh.auth.main:app", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (tmp_path / "auth.log").read_text()
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "auth-service did not answer /healthz"
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


def test_auth_exposes_every_metric_its_rules_and_dashboards_use(auth_service: str) -> None:
    # Traffic first, so that labelled series exist as well as their declarations.
    for path in ("/healthz", "/readyz", "/.well-known/jwks.json"):
        httpx.get(auth_service + path, timeout=5)
    response = httpx.get(auth_service + "/metrics", timeout=5)
    assert response.status_code == 200
    exposed = exposed_names(response.text)

    wanted = {
        name for name in used_metric_names() if owning_service(base_name(name)) in {None, "auth"}
    }
    assert "medmesh_auth_tokens_issued_total" in wanted
    missing = sorted(
        name for name in wanted if name not in exposed and base_name(name) not in exposed
    )
    assert missing == []
