"""Benchmark of payment-gateway (issue "payment-gateway"): payment intents created and confirmed
per second, each POST with its own ``Idempotency-Key`` (``amount``, ``currency``,
``payment_method=pm_card_visa``, ``confirm=true``: a charge, its capture, ledger entries,
events), with p50/p99 latency; control in the same run: the bare FastAPI form endpoint
(``bench/control_app.py``) driven by the same load generator with the same body.

One worker per server (pinned to core 0 when there are two cores), SQLite in a temporary
directory, tokens HS256 (no auth-service needed). The load generator keeps ``CONNECTIONS``
requests in flight for ``SECONDS`` after a warm-up. Target (the issue): ≥ 1,000 create +
confirm per second.
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
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench.servers import free_port, uvicorn_app

SECONDS = float(os.environ.get("BENCH_PAYMENTS_SECONDS", "8"))
CONNECTIONS = int(os.environ.get("BENCH_PAYMENTS_CONNECTIONS", "16"))
SECRET = "bench-payments-shared-secret-0123456789abcdef"
BODY = urlencode(
    {"amount": "2500", "currency": "usd", "payment_method": "pm_card_visa", "confirm": "true"}
)


def _token() -> str:
    from medmesh.platform.tokens import SigningKey

    now = int(time.time())
    claims = {
        "iss": "http://auth.bench",
        "sub": "bench",
        "aud": ["medmesh-payments"],
        "exp": now + 3600,
        "iat": now,
        "nbf": now,
        "jti": "bench",
        "scope": "payments:write",
        "client_id": "bench",
        "roles": [],
    }
    return SigningKey.hs256(SECRET).sign(claims)


async def _drive(url: str, path: str, headers: dict[str, str], keyed: bool) -> dict[str, Any]:
    keys = itertools.count()
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:

        async def worker(until: float, record: bool) -> None:
            nonlocal errors
            while time.perf_counter() < until:
                sent = dict(headers)
                if keyed:
                    sent["Idempotency-Key"] = f"bench-{next(keys)}"
                started = time.perf_counter()
                response = await client.post(path, content=BODY, headers=sent)
                if not record:
                    continue
                latencies.append((time.perf_counter() - started) * 1000)
                if response.status_code != 200:
                    errors += 1

        warm = time.perf_counter() + 1.0
        await asyncio.gather(*(worker(warm, False) for _ in range(CONNECTIONS)))
        started = time.perf_counter()
        until = started + SECONDS
        await asyncio.gather(*(worker(until, True) for _ in range(CONNECTIONS)))
        seconds = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "requests": len(latencies) - errors,
        "errors": errors,
        "per_second": round((len(latencies) - errors) / seconds, 1),
        "p50_ms": round(ordered[len(ordered) // 2], 2) if ordered else None,
        "p99_ms": round(ordered[int(len(ordered) * 0.99)], 2) if ordered else None,
        "mean_ms": round(statistics.fmean(ordered), 2) if ordered else None,
    }


def main() -> dict[str, Any]:
    from medmesh.payments.migrations import upgrade

    form = {"Content-Type": "application/x-www-form-urlencoded"}
    with tempfile.TemporaryDirectory() as tmp:
        database = f"sqlite+medmesh:///{Path(tmp) / 'payments.db'}"
        asyncio.run(upgrade(database))
        env = {
            "MEDMESH_PAYMENTS_DATABASE_URL": database,
            "MEDMESH_PAYMENTS_VAR_DIR": tmp,
            "MEDMESH_PAYMENTS_ISSUER": "http://auth.bench",
            "MEDMESH_PAYMENTS_JWT_HS256_SECRET": SECRET,
            "MEDMESH_PAYMENTS_REVOCATION_POLL_SECONDS": "0",
            "MEDMESH_PAYMENTS_LOG_LEVEL": "warning",
        }
        headers = {**form, "Authorization": "Bearer " + _token()}
        with uvicorn_app(
            "medmesh.payments.main:app", free_port(), env, ready_path="/readyz"
        ) as gateway:
            intents = asyncio.run(_drive(gateway, "/v1/payment_intents", headers, keyed=True))
    with uvicorn_app("bench.control_app:app", free_port()) as control_url:
        control = asyncio.run(_drive(control_url, "/form", form, keyed=False))
    return {
        "create_confirm_with_idempotency_key": intents,
        "control_form_endpoint": control,
        "ratio_to_control": round(intents["per_second"] / control["per_second"], 4)
        if control["per_second"]
        else None,
        "connections": CONNECTIONS,
        "seconds": SECONDS,
    }


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
