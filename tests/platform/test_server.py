import asyncio
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

SERVICE = """
import asyncio
import sys
from pathlib import Path
from typing import ClassVar

from fastapi import APIRouter
from pydantic_settings import SettingsConfigDict

from medmesh.platform.app import create_service_app
from medmesh.platform.config import ServiceSettings
from medmesh.platform.web.server import run_app


class DemoSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="MEDMESH_DEMO_", extra="ignore")
    service_name: ClassVar[str] = "demo"


router = APIRouter()


@router.get("/slow")
async def slow() -> dict[str, bool]:
    sys.stdout.write("slow request started\\n")
    sys.stdout.flush()
    await asyncio.sleep(1.5)
    return {"done": True}


port = int(sys.argv[1])
var = Path(sys.argv[2])
drain = float(sys.argv[3])
settings = DemoSettings(database_url=f"sqlite+medmesh:///{var / 'demo.db'}", drain_seconds=drain)
app = create_service_app(
    settings, title="demo", version="0", description="demo", routers=[router], verify_tokens=False
)
run_app(app, "127.0.0.1", port, drain_seconds=settings.drain_seconds)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def read_until(process: subprocess.Popen[bytes], marker: str) -> str:
    """The process's output up to and including the first line holding ``marker``."""
    assert process.stdout is not None
    lines: list[str] = []
    while True:
        line = process.stdout.readline().decode()
        assert line, f"the process ended its output before {marker!r}: {''.join(lines)}"
        lines.append(line)
        if marker in line:
            return "".join(lines)


@pytest.fixture
def drain_seconds() -> float:
    return 3.0


@pytest.fixture
def service(tmp_path: Path, drain_seconds: float) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    script = tmp_path / "service.py"
    script.write_text(SERVICE)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(script), str(port), str(tmp_path), str(drain_seconds)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            output = process.stdout.read().decode() if process.stdout else ""
            process.kill()
            pytest.fail(f"service did not start:\n{output}")
        time.sleep(0.05)
    try:
        yield process, base
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        if process.stdout:
            process.stdout.close()


async def test_sigterm_drains_then_exits_cleanly(
    service: tuple[subprocess.Popen[bytes], str],
) -> None:
    process, base = service
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        assert (await http.get("/readyz")).status_code == 200
        in_flight = asyncio.create_task(http.get("/slow"))
        before = await asyncio.to_thread(read_until, process, "slow request started")

        process.send_signal(signal.SIGTERM)
        before += await asyncio.to_thread(read_until, process, '"event":"draining"')
        # fresh connections during the drain: readiness says no, liveness still yes
        async with httpx.AsyncClient(base_url=base, timeout=5) as probe:
            ready = await probe.get("/readyz")
            alive = await probe.get("/healthz")

        slow = await in_flight

    assert ready.status_code == 503
    assert ready.json() == {"status": "draining"}
    assert alive.status_code == 200
    assert slow.status_code == 200
    assert slow.json() == {"done": True}
    assert await asyncio.to_thread(process.wait, 15) == 0
    output = before + (process.stdout.read().decode() if process.stdout else "")
    assert '"event":"draining"' in output
    assert '"event":"service_stopping"' in output


@pytest.mark.parametrize("drain_seconds", [600.0])
async def test_second_signal_stops_without_waiting_for_the_drain(
    service: tuple[subprocess.Popen[bytes], str],
) -> None:
    process, _ = service
    process.send_signal(signal.SIGTERM)
    await asyncio.to_thread(read_until, process, '"event":"draining"')
    process.send_signal(signal.SIGTERM)

    # It exits long before its 600 s drain could end: the second signal did not wait for it.
    assert await asyncio.to_thread(process.wait, 60) == 0
