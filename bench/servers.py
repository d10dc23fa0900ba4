"""Start and stop the processes a benchmark measures (one worker each, pinned to core 0)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from bench.loadgen import build_request, run_load

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
#: A measurement: 32 keep-alive connections for 8 s (after loadgen's 1 s warm-up).
SECONDS = 8.0
CONNECTIONS = 32
#: The process serving each port started here (for its CPU time, see loadgen.run_load).
SERVER_PIDS: dict[int, int] = {}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pin(cmd: list[str]) -> list[str]:
    return ["taskset", "-c", "0", *cmd] if (os.cpu_count() or 1) >= 2 and _has("taskset") else cmd


def _has(program: str) -> bool:
    return any((Path(p) / program).exists() for p in os.environ.get("PATH", "").split(os.pathsep))


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: process exited with {process.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready")


@contextlib.contextmanager
def uvicorn_app(
    app: str, port: int, env: dict[str, str] | None = None, ready_path: str = "/ping"
) -> Iterator[str]:
    """Serve an ASGI app with uvicorn's defaults as the services use them (one worker)."""
    cmd = [
        str(BIN / "python"),
        "-m",
        "uvicorn",
        app,
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    process = subprocess.Popen(_pin(cmd), cwd=ROOT, env={**os.environ, **(env or {})})
    SERVER_PIDS[port] = process.pid
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url + ready_path, process)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@contextlib.contextmanager
def medmesh_service(service: str, port: int, env: dict[str, str]) -> Iterator[str]:
    """Serve a medmesh service with ``medmesh serve`` (the same path as production)."""
    cmd = [
        str(BIN / "python"),
        "-m",
        "medmesh.cli",
        "serve",
        service,
        "--port",
        str(port),
        "--migrate",
    ]
    process = subprocess.Popen(_pin(cmd), cwd=ROOT, env={**os.environ, **env})
    SERVER_PIDS[port] = process.pid
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url + "/readyz", process)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def load(
    url: str,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes = b"",
    expect: int = 200,
    *,
    seconds: float = SECONDS,
    connections: int = CONNECTIONS,
) -> dict[str, Any]:
    """Drive one request at a server started here; its summary, with the server's CPU time per
    request when this module started the server."""
    host, port = url.removeprefix("http://").split(":")
    request = build_request(method, path, f"{host}:{port}", headers, body)
    summary: dict[str, Any] = run_load(
        host,
        int(port),
        request,
        seconds=seconds,
        connections=connections,
        expect=expect,
        server_pid=SERVER_PIDS.get(int(port)),
    ).summary()
    return summary
