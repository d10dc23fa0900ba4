"""Benchmark of payment-gateway (issue "payment-gateway"): payment intents created and confirmed
per second, each POST with its own ``Idempotency-Key`` (``amount``, ``currency``,
``payment_method=pm_card_visa``, ``confirm=true``: a charge, its capture, ledger entries,
events), with p50/p99 latency; control in the same run: the bare FastAPI form endpoint
(``bench/control_app.py``) driven by the same load generator with the same body.

One worker per server (pinned to core 0 when there are two cores), SQLite in a temporary
directory, tokens HS256 (no auth-service needed). The load generator
(``bench/payments/keyed_load.py``, on core 1) keeps ``CONNECTIONS`` requests in flight for
``SECONDS`` after a warm-up, each with a new key, and reports the server's CPU time per request
(steadier than requests/s on a shared machine). Target (the issue): ≥ 1,000 create + confirm
per second.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench.payments.keyed_load import run_keyed_load
from bench.servers import SERVER_PIDS, free_port, uvicorn_app

SECONDS = float(os.environ.get("BENCH_PAYMENTS_SECONDS", "8"))
CONNECTIONS = int(os.environ.get("BENCH_PAYMENTS_CONNECTIONS", "32"))
SECRET = "bench-payments-shared-secret-0123456789abcdef"
BODY = urlencode(
    {"amount": "2500", "currency": "usd", "payment_method": "pm_card_visa", "confirm": "true"}
).encode()


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


def _measure(url: str, path: str, headers: dict[str, str]) -> dict[str, Any]:
    port = int(url.rsplit(":", 1)[1])
    result = run_keyed_load(
        url,
        path,
        headers,
        BODY,
        seconds=SECONDS,
        connections=CONNECTIONS,
        server_pid=SERVER_PIDS.get(port),
    )
    return result.summary()


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
            intents = _measure(gateway, "/v1/payment_intents", headers)
    with uvicorn_app("bench.control_app:app", free_port()) as control_url:
        control = _measure(control_url, "/form", form)
    return {
        "create_confirm_with_idempotency_key": intents,
        "control_form_endpoint": control,
        "ratio_to_control": round(intents["rps"] / control["rps"], 4) if control["rps"] else None,
        "connections": CONNECTIONS,
        "seconds": SECONDS,
    }


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
