"""Benchmark of phi-service (issue "phi-service: a FHIR R4 store that protects PHI").

Figures, each with a ratio against a control measured in the same run (a bare FastAPI app,
bench/control_app.py, on the same server settings):
- authenticated read (GET /fhir/Patient/{id}) req/s vs the control's GET /ping;
- create (POST /fhir/Patient) req/s vs the control's POST /form;
- transaction import: resources/s posting the Synthea 2019 patient bundles
  (/work/shared/conformance/synthea-2019, 66-71 entries each) as transactions;
- Patient name search latency (p50/p95, one connection and eight) with many patients
  stored. The patients are bulk-inserted first, in process, through the service's own write
  path (``ResourceService.write``: validation-free storage primitive, AES-GCM seal, blind-index
  rows) for ``LOAD_SECONDS``; the report says how many were stored.

Every request is authenticated: phi-service runs with ``MEDMESH_PHI_JWT_HS256_SECRET`` and the
benchmark signs a ``system/*.cruds`` token with ``platform.testing.TokenFactory`` and an HS256
``SigningKey`` (verification costs the same per request as RS256 with a cached JWKS key:
tokens are verified once and cached). Every request is audited as in production.

One worker per server (pinned to core 0), the load generator on core 1. SQLite (WAL) in a
temporary folder, as ``make run`` uses it.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench.servers import ROOT, SECONDS, free_port, load, medmesh_service, uvicorn_app

LOAD_SECONDS = float(os.environ.get("BENCH_PHI_LOAD_SECONDS", "600"))  # 100,000 take ~7 min
TARGET_PATIENTS = int(os.environ.get("BENCH_PHI_PATIENTS", "100000"))
SYNTHEA = Path(
    os.environ.get("BENCH_PHI_SYNTHEA", str(ROOT.parent / "shared/conformance/synthea-2019"))
)
SECRET = "bench-phi-hs256-shared-secret-of-32-bytes-or-more"
ISSUER = "http://auth.bench"
BLIND_KEY = "YmVuY2gtcGhpLWJsaW5kLWluZGV4LWtleS1vZi0zMi1ieXRlcw"
SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "we", "zu", "ba", "de", "fi", "go"]
SYLLABLES += ["ha", "je", "ko", "lu", "ma", "no", "pe", "ri", "so", "ta"]
FHIR_JSON = "application/fhir+json"


def _token() -> str:
    from medmesh.platform.testing import TokenFactory
    from medmesh.platform.tokens import SigningKey

    tokens = TokenFactory(ISSUER)
    tokens.key = SigningKey.hs256(SECRET)
    token: str = tokens.token("system/*.cruds", audience="medmesh-phi", lifetime=4 * 3600)
    return token


def _env(var_dir: Path) -> dict[str, str]:
    from medmesh.platform.crypto import KeyRing

    keys = var_dir / "bench-keys"
    if not keys.exists():
        keys.write_text(KeyRing.generate("bench1").to_setting())
    return {
        "MEDMESH_PHI_VAR_DIR": str(var_dir),
        "MEDMESH_PHI_ISSUER": ISSUER,
        "MEDMESH_PHI_JWT_HS256_SECRET": SECRET,
        "MEDMESH_PHI_REVOCATION_POLL_SECONDS": "0",  # no auth-service publishes revocations
        "MEDMESH_PHI_ENCRYPTION_KEYS": keys.read_text(),
        "MEDMESH_PHI_BLIND_INDEX_KEY": BLIND_KEY,
        "MEDMESH_PHI_DRAIN_SECONDS": "0",
        "MEDMESH_PHI_LOG_LEVEL": "warning",
        "MEDMESH_PHI_RATE_LIMIT_PER_MINUTE": "1000000000",
        # One core for the server (the load generator has the other): preparation workers would
        # share it. bench_import.py measures bulk loads with and without them.
        "MEDMESH_PHI_IMPORT_WORKERS": "0",
        # An empty database (e.g. postgresql+asyncpg://.../phibench) to measure on PostgreSQL.
        "MEDMESH_PHI_DATABASE_URL": os.environ.get("BENCH_PHI_DATABASE_URL", ""),
    }


def family(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(3)).capitalize()


def synthetic_patient(rng: random.Random, i: int) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": "urn:bench:mrn", "value": f"MRN{i:08d}"}],
        "name": [{"family": family(rng), "given": [family(rng)]}],
        "telecom": [{"system": "phone", "value": f"555-{i:07d}"}],
        "gender": rng.choice(["female", "male"]),
        "birthDate": f"{rng.randint(1930, 2020)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
    }


async def _bulk_insert(env: dict[str, str], seconds: float, target: int) -> dict[str, Any]:
    """Store patients through ResourceService.write, 500 per transaction, for ``seconds``."""
    from medmesh.phi.config import PhiSettings
    from medmesh.phi.main import create_app
    from medmesh.phi.migrations import upgrade

    settings = PhiSettings(
        var_dir=Path(env["MEDMESH_PHI_VAR_DIR"]),
        database_url=env["MEDMESH_PHI_DATABASE_URL"],
        encryption_keys=env["MEDMESH_PHI_ENCRYPTION_KEYS"],
        blind_index_key=BLIND_KEY,
        issuer=ISSUER,
        jwt_hs256_secret=SECRET,
        log_level="warning",
    )
    await upgrade(settings.effective_database_url)
    app = create_app(settings)
    rng = random.Random(20261126)
    stored = 0
    start = time.perf_counter()
    async with app.router.lifespan_context(app):
        resources = app.state.phi.resources
        database = app.state.database
        while stored < target and time.perf_counter() - start < seconds:
            async with database.unit_of_work() as session:
                for _ in range(500):
                    await resources.write(session, synthetic_patient(rng, stored), method="POST")
                    stored += 1
    elapsed = time.perf_counter() - start
    return {"patients": stored, "seconds": round(elapsed, 1), "per_s": round(stored / elapsed, 1)}


def bench_control(results: dict[str, Any]) -> None:
    port = free_port()
    with uvicorn_app("bench.control_app:app", port) as url:
        results["control_ping"] = load(url, "GET", "/ping", {})
        results["control_form"] = load(
            url, "POST", "/form", {"Content-Type": "application/x-www-form-urlencoded"}, b"a=1&b=2"
        )


def bench_crud_and_import(results: dict[str, Any], token: str) -> None:
    var_dir = Path(tempfile.mkdtemp(prefix="medmesh-bench-phi-"))
    env = _env(var_dir)
    auth = {"Authorization": f"Bearer {token}", "Accept": FHIR_JSON}
    write = {**auth, "Content-Type": FHIR_JSON, "Prefer": "return=minimal"}
    port = free_port()
    with medmesh_service("phi", port, env) as url:
        patient = synthetic_patient(random.Random(1), 1)
        created = httpx.post(
            url + "/fhir/Patient", json=patient, headers={**auth, "Content-Type": FHIR_JSON}
        )
        assert created.status_code == 201, created.text
        path = f"/fhir/Patient/{created.json()['id']}"
        results["read"] = load(url, "GET", path, auth)
        results["create"] = load(
            url, "POST", "/fhir/Patient", write, json.dumps(patient).encode(), expect=201
        )
        bundles = [p.read_bytes() for p in sorted(SYNTHEA.glob("*.json"))]
        if not bundles:
            results["transaction"] = {"skipped": f"no bundles in {SYNTHEA}"}
            return
        check = httpx.post(url + "/fhir", content=bundles[0], headers=write, timeout=120)
        assert check.status_code == 200, check.text[:500]
        requests = entries = errors = 0
        latencies: list[float] = []
        seconds = cpu_seconds = 0.0
        for body in bundles:
            n = len(json.loads(body)["entry"])
            summary = load(url, "POST", "/fhir", write, body, seconds=SECONDS / 2, connections=4)
            requests += int(summary["requests"])
            errors += int(summary["errors"])
            entries += int(summary["requests"]) * n
            seconds += SECONDS / 2
            latencies.append(summary["p95_ms"])
            cpu_seconds += summary.get("server_cpu_us_per_request", 0.0) * summary["requests"] / 1e6
        results["transaction"] = {
            "bundles_per_s": round(requests / seconds, 1),
            "resources_per_s": round(entries / seconds, 1),
            "server_cpu_us_per_resource": round(cpu_seconds / entries * 1e6, 1)
            if entries
            else None,
            "p95_ms_worst_bundle": max(latencies),
            "errors": errors,
            "entries_per_bundle": [len(json.loads(b)["entry"]) for b in bundles],
        }


def bench_search(results: dict[str, Any], token: str) -> None:
    var_dir = Path(tempfile.mkdtemp(prefix="medmesh-bench-phi-search-"))
    env = _env(var_dir)
    results["search_load"] = asyncio.run(_bulk_insert(env, LOAD_SECONDS, TARGET_PATIENTS))
    rng = random.Random(7)
    auth = {"Authorization": f"Bearer {token}", "Accept": FHIR_JSON}
    port = free_port()
    with medmesh_service("phi", port, env) as url:
        name = family(rng).lower()
        prefix = name[:4]
        for key, query in (("exact_family", name), ("prefix4", prefix)):
            path = f"/fhir/Patient?name={query}"
            bundle = httpx.get(url + path + "&_total=accurate", headers=auth, timeout=60).json()
            one = load(url, "GET", path, auth, connections=1, seconds=SECONDS / 2)
            eight = load(url, "GET", path, auth, connections=8, seconds=SECONDS / 2)
            results[f"search_{key}"] = {
                "query": f"name={query}",
                "matches": bundle.get("total", len(bundle.get("entry", []))),
                "page": len(bundle.get("entry", [])),
                "p50_ms_1conn": one["p50_ms"],
                "p95_ms_1conn": one["p95_ms"],
                "p95_ms_8conn": eight["p95_ms"],
                "rps_8conn": eight["rps"],
                "errors": one["errors"] + eight["errors"],
            }


def main() -> dict[str, Any]:
    results: dict[str, Any] = {}
    token = _token()
    bench_control(results)
    bench_crud_and_import(results, token)
    bench_search(results, token)
    ping, form = results["control_ping"]["rps"], results["control_form"]["rps"]
    report = {
        "control_bare_fastapi_ping_rps": ping,
        "control_bare_fastapi_form_rps": form,
        "read_rps": results["read"]["rps"],
        "read_ratio_to_control": round(results["read"]["rps"] / ping, 3),
        "read_p95_ms": results["read"]["p95_ms"],
        "read_server_cpu_us": results["read"].get("server_cpu_us_per_request"),
        "create_per_s": results["create"]["rps"],
        "create_ratio_to_control": round(results["create"]["rps"] / form, 3),
        "create_p95_ms": results["create"]["p95_ms"],
        "create_server_cpu_us": results["create"].get("server_cpu_us_per_request"),
        "control_ping_server_cpu_us": results["control_ping"].get("server_cpu_us_per_request"),
        "transaction": results["transaction"],
        "search_patients_stored": results["search_load"],
        "search_exact_family": results["search_exact_family"],
        "search_prefix4": results["search_prefix4"],
        "errors": {
            k: v["errors"] for k, v in results.items() if isinstance(v, dict) and "errors" in v
        },
        "tokens": "HS256 (MEDMESH_PHI_JWT_HS256_SECRET), signed with platform.testing.TokenFactory",
        "targets": {
            "read_rps": 3000,
            "create_per_s": 1500,
            "transaction_resources_per_s": 5000,
            "search_p95_ms_at_100k_patients": 20,
        },
    }
    return report


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
