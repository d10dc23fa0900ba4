"""A service run as a real process for the deploy tests, and what its /metrics exposes."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from medmesh.platform.testing import TokenFactory
from medmesh.platform.tokens import SigningKey
from tests.deploy.emitted_metrics import base_name, owning_service
from tests.deploy.test_observability import used_metric_names
from tests.deploy.tools import ROOT

SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_sum", "_count"),
    "summary": ("_sum", "_count"),
}
SAMPLE_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
#: Resource servers verify HS256 tokens from this issuer (no auth process needed).
SECRET = "deploy-test-hs256-secret-of-at-least-32-bytes"
ISSUER = "http://auth.deploy.test"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def tokens() -> TokenFactory:
    """Tokens the services started by :func:`running_service` accept."""
    factory = TokenFactory(ISSUER)
    factory.key = SigningKey.hs256(SECRET)
    return factory


@contextlib.contextmanager
def running_service(service: str, var_dir: Path) -> Iterator[str]:
    """``medmesh serve <service> --migrate`` on a free port until ready; yields its URL."""
    # A child process needs the parent's environment (PATH, HOME) but none of its MEDMESH_*.
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDMESH_")}  # noqa: TID251
    prefix = f"MEDMESH_{service.upper()}_"
    env.update(
        {
            prefix + "VAR_DIR": str(var_dir),
            prefix + "DRAIN_SECONDS": "0",
            "MEDMESH_LOG_LEVEL": "warning",
        }
    )
    if service != "auth":
        # No auth-service runs here to publish revocations: the check is switched off.
        env.update(
            {
                prefix + "ISSUER": ISSUER,
                prefix + "JWT_HS256_SECRET": SECRET,
                prefix + "REVOCATION_POLL_SECONDS": "0",
            }
        )
    port = free_port()
    log_path = var_dir / f"{service}.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "medmesh.cli",
                "serve",
                service,
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
                assert process.poll() is None, log_path.read_text()
                try:
                    if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, f"{service} did not become ready"
                time.sleep(0.2)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


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


def used_by(service: str) -> set[str]:
    """The metric names rules and dashboards use for ``service`` (and the generic ones)."""
    return {
        name for name in used_metric_names() if owning_service(base_name(name)) in {None, service}
    }


def missing_metrics(service: str, exposition: str) -> list[str]:
    """The names used for ``service`` that its exposition does not carry."""
    exposed = exposed_names(exposition)
    return sorted(
        name for name in used_by(service) if name not in exposed and base_name(name) not in exposed
    )
