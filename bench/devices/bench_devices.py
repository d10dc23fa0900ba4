"""Benchmark of the medical-device service (issue 15): HTTP batch ingest, readings durably
stored per second (each response comes after the commit), with p50/p99 latency per batch;
control in the same run: a bare FastAPI endpoint (``bench/devices/control.py``) parsing the
same batches, driven by the same load generator.

One worker per server (pinned to core 0 when there are two cores), SQLite in a temporary
directory (``BENCH_DEVICES_DATABASE_URL``, a PostgreSQL URL: an empty database of its own on that
server instead, made and dropped by the benchmark; the database server's CPU is not counted and
shares the machine), tokens HS256 (no auth-service needed), the load generator on core 1. Each request is
``BATCH`` heart-rate readings of ``DEVICES`` assigned devices with reading ids never sent before
(a repeated id would be a duplicate, not a store). Target (the issue): ≥ 50,000 readings/s.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench.loadgen import process_cpu_seconds
from bench.servers import SERVER_PIDS, free_port, uvicorn_app

SECONDS = float(os.environ.get("BENCH_DEVICES_SECONDS", "8"))
CONNECTIONS = int(os.environ.get("BENCH_DEVICES_CONNECTIONS", "4"))
BATCH = int(os.environ.get("BENCH_DEVICES_BATCH", "1000"))
DEVICES = int(os.environ.get("BENCH_DEVICES_DEVICES", "10"))
DATABASE_URL = os.environ.get("BENCH_DEVICES_DATABASE_URL", "")
SECRET = "bench-devices-shared-secret-0123456789abcdef"
#: The first reading's time (every reading is of a later minute, still in the past).
BASE = datetime(2024, 1, 1, tzinfo=UTC)


def _token(scope: str) -> str:
    from medmesh.platform.tokens import SigningKey

    now = int(time.time())
    claims = {
        "iss": "http://auth.bench",
        "sub": "bench",
        "aud": ["medmesh-devices"],
        "exp": now + 3600,
        "iat": now,
        "nbf": now,
        "jti": "bench",
        "scope": scope,
        "client_id": "bench",
        "roles": [],
    }
    return SigningKey.hs256(SECRET).sign(claims)


def service_env(database: str, var_dir: str) -> dict[str, str]:
    """The settings of a measured devices service: HS256 tokens, no auth-service, and an
    ingest-only replica (``DELIVERY_ENABLED=false``): Bundles stay queued and delivery does not
    share the core (``bench_delivery.py`` measures delivery)."""
    return {
        "MEDMESH_DEVICES_DATABASE_URL": database,
        "MEDMESH_DEVICES_VAR_DIR": var_dir,
        "MEDMESH_DEVICES_ISSUER": "http://auth.bench",
        "MEDMESH_DEVICES_JWT_HS256_SECRET": SECRET,
        "MEDMESH_DEVICES_REVOCATION_POLL_SECONDS": "0",
        "MEDMESH_DEVICES_LOG_LEVEL": "error",
        "MEDMESH_DEVICES_PHI_URL": "http://127.0.0.1:9",
        "MEDMESH_DEVICES_DELIVERY_BACKOFF_SECONDS": "3600",
        "MEDMESH_DEVICES_DELIVERY_ENABLED": "false",
    }


def _register(url: str) -> list[str]:
    headers = {"Authorization": "Bearer " + _token("devices:write")}
    ids = []
    with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
        for n in range(DEVICES):
            device = http.post("/v1/devices", json={"serial_number": f"bench-{n}"}).json()
            assigned = http.post(
                f"/v1/devices/{device['id']}/assignments",
                json={"patient": f"Patient/bench-{n}", "start": "2020-01-01T00:00:00Z"},
            )
            assigned.raise_for_status()
            ids.append(device["id"])
    return ids


def _batch(device_ids: list[str], sequence: int) -> bytes:
    """``BATCH`` readings taking turns over the devices, each device's a minute apart (each
    batch continues where the previous one ended)."""
    per_device = -(-BATCH // len(device_ids))
    first = BASE + timedelta(minutes=sequence * per_device)
    return orjson.dumps(
        {
            "readings": [
                {
                    "device_id": device_ids[i % len(device_ids)],
                    "reading_id": f"{sequence}-{i}",
                    "timestamp": (first + timedelta(minutes=i // len(device_ids))).isoformat(),
                    "metric": "heart_rate",
                    "value": 60 + i % 40,
                    "unit": "/min",
                }
                for i in range(BATCH)
            ]
        }
    )


async def _drive(url: str, token: str, device_ids: list[str], seconds: float) -> dict[str, Any]:
    headers = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
    sequence = itertools.count()
    stored = 0
    errors = 0
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def connection(http: httpx.AsyncClient) -> None:
        nonlocal stored, errors
        while time.perf_counter() < deadline:
            body = _batch(device_ids, next(sequence))
            started = time.perf_counter()
            response = await http.post("/v1/readings", content=body, headers=headers)
            latencies.append((time.perf_counter() - started) * 1000)
            if response.status_code == 200:
                stored += response.json()["stored"]
            else:
                errors += 1

    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        started = time.perf_counter()
        await asyncio.gather(*(connection(http) for _ in range(CONNECTIONS)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "readings_per_second": round(stored / elapsed, 1),
        "readings": stored,
        "batches": len(latencies),
        "errors": errors,
        "p50_ms": round(latencies[len(latencies) // 2], 1) if latencies else None,
        "p99_ms": round(latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 1)
        if latencies
        else None,
        "mean_ms": round(statistics.fmean(latencies), 1) if latencies else None,
    }


def _measure(url: str, token: str, device_ids: list[str]) -> dict[str, Any]:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {1})
    port = int(url.rsplit(":", 1)[1])
    pid = SERVER_PIDS.get(port)
    asyncio.run(_drive(url, token, device_ids, 1.0))  # warm-up
    before = process_cpu_seconds(pid) if pid else 0.0
    result = asyncio.run(_drive(url, token, device_ids, SECONDS))
    if pid and result["readings"]:
        cpu = process_cpu_seconds(pid) - before
        result["server_cpu_us_per_reading"] = round(cpu / result["readings"] * 1e6, 2)
    return result


@contextmanager
def _database(folder: str) -> Iterator[str]:
    """An empty database at the head of the devices migrations: a SQLite file in ``folder``, or
    a database of its own on the server of ``BENCH_DEVICES_DATABASE_URL``."""
    from medmesh.devices.migrations import upgrade
    from medmesh.platform.testing import create_postgres_database, drop_postgres_database

    url = f"sqlite+medmesh:///{Path(folder) / 'devices.db'}"
    if DATABASE_URL:
        url = asyncio.run(create_postgres_database(DATABASE_URL))
    try:
        asyncio.run(upgrade(url))
        yield url
    finally:
        if DATABASE_URL:
            asyncio.run(drop_postgres_database(DATABASE_URL, url))


def main() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, _database(tmp) as database:
        env = {
            **service_env(database, tmp),
            "MEDMESH_DEVICES_MAX_BODY_BYTES": str(4 * 1024 * 1024),
        }
        with uvicorn_app("medmesh.devices.main:app", free_port(), env, ready_path="/readyz") as url:
            device_ids = _register(url)
            ingest = _measure(url, _token("devices:ingest"), device_ids)
    with uvicorn_app("bench.devices.control:app", free_port()) as control_url:
        control = _measure(control_url, "unused", device_ids)
    return {
        "database": "postgresql" if DATABASE_URL else "sqlite",
        "http_batch_ingest": ingest,
        "control_bare_json_endpoint": control,
        "ratio_to_control": round(ingest["readings_per_second"] / control["readings_per_second"], 4)
        if control["readings_per_second"]
        else None,
        "batch": BATCH,
        "connections": CONNECTIONS,
        "seconds": SECONDS,
    }


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
