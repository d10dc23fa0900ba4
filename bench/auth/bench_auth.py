"""Benchmark of auth-service (ARCHITECTURE §7; issue "Platform foundation, auth-service").

Figures, each with a ratio against a control measured in the same run:
- client_credentials tokens/s vs a bare FastAPI form endpoint, with RS256 keys (the default) and
  with ES256 keys (``MEDMESH_AUTH_SIGNING_ALG=ES256``);
- introspections/s vs the same control;
- token verification in a resource server: µs per TokenVerifier.verify_cached call, and the
  per-request cost of RequireScopes on a FastAPI route vs the same route without it;
- medmesh's own JWS vs joserfc and PyJWT (``bench_jws.py``, in process): first-sight verification
  and token issue per second for RS256 and ES256, each library with its ratio to medmesh's code.

One worker per server (pinned to core 0), the load generator on core 1.
"""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench.auth import bench_jws
from bench.servers import BIN, ROOT, free_port, load, medmesh_service, uvicorn_app


def bootstrap_clients(env: dict[str, str]) -> dict[str, str]:
    """``medmesh admin bootstrap`` against the service of ``env``; the client secrets it prints."""
    out = subprocess.run(
        [str(BIN / "python"), "-m", "medmesh.cli", "admin", "bootstrap"],
        cwd=ROOT,
        env={**__import__("os").environ, **env},
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    secrets: dict[str, str] = {}
    for line in out.splitlines():
        if line.startswith("client "):
            _, client_id, _, secret = line.split()
            secrets[client_id] = secret
    return secrets


def bench_auth_service(results: dict[str, Any], alg: str = "RS256") -> None:
    """Tokens/s with ``alg`` keys; with RS256 also introspections/s and a token for the verifier."""
    tmp = Path(tempfile.mkdtemp(prefix="medmesh-bench-auth-"))
    port = free_port()
    env = {
        "MEDMESH_AUTH_VAR_DIR": str(tmp),
        "MEDMESH_AUTH_ISSUER": f"http://127.0.0.1:{port}",
        "MEDMESH_AUTH_DRAIN_SECONDS": "0",
        "MEDMESH_AUTH_LOG_LEVEL": "warning",
        "MEDMESH_AUTH_TOKEN_RATE_LIMIT_PER_MINUTE": "100000000",
        "MEDMESH_AUTH_SIGNING_ALG": alg,
    }
    with medmesh_service("auth", port, env) as url:
        secrets = bootstrap_clients(env)
        basic = base64.b64encode(f"demo-service:{secrets['demo-service']}".encode()).decode()
        form_headers = {
            "Authorization": f"Basic {basic}",
            "Content-Type": "application/x-www-form-urlencoded",
        }
        token_body = urlencode(
            {"grant_type": "client_credentials", "scope": "system/*.cruds"}
        ).encode()
        if alg != "RS256":
            results[f"client_credentials_{alg}"] = load(
                url, "POST", "/oauth/token", form_headers, token_body
            )
            token = httpx.post(url + "/oauth/token", content=token_body, headers=form_headers)
            results[f"sample_token_{alg}"] = token.json()["access_token"]
            results[f"jwks_{alg}"] = httpx.get(url + "/.well-known/jwks.json").json()
            results[f"issuer_{alg}"] = env["MEDMESH_AUTH_ISSUER"]
            return
        results["client_credentials"] = load(url, "POST", "/oauth/token", form_headers, token_body)
        token = httpx.post(url + "/oauth/token", content=token_body, headers=form_headers).json()[
            "access_token"
        ]
        introspect_body = urlencode({"token": token}).encode()
        check = httpx.post(
            url + "/oauth/introspect", content=introspect_body, headers=form_headers
        ).json()
        assert check["active"] is True, check
        results["introspection"] = load(
            url, "POST", "/oauth/introspect", form_headers, introspect_body
        )
        results["sample_token"] = token
        results["jwks"] = httpx.get(url + "/.well-known/jwks.json").json()
        results["issuer"] = env["MEDMESH_AUTH_ISSUER"]


def bench_control(results: dict[str, Any]) -> None:
    port = free_port()
    with uvicorn_app("bench.control_app:app", port) as url:
        body = urlencode({"grant_type": "client_credentials", "scope": "system/*.cruds"}).encode()
        results["control_form"] = load(
            url, "POST", "/form", {"Content-Type": "application/x-www-form-urlencoded"}, body
        )
        results["control_ping"] = load(url, "GET", "/ping", {})


def bench_verification(results: dict[str, Any]) -> None:
    from medmesh.platform.tokens import TokenVerifier

    verifier = TokenVerifier(results["issuer"], "medmesh-phi", jwks=results["jwks"])
    token = results["sample_token"]
    verifier.verify_cached(token)
    n = 20_000
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(n):
            verifier.verify_cached(token)
        best = min(best, (time.perf_counter() - start) / n)
    results["verify_cached_us"] = round(best * 1e6, 1)
    es_verifier = TokenVerifier(results["issuer_ES256"], "medmesh-phi", jwks=results["jwks_ES256"])
    es_token = results["sample_token_ES256"]
    es_verifier.verify_cached(es_token)
    start = time.perf_counter()
    for _ in range(n):
        es_verifier.verify_cached(es_token)
    results["verify_cached_es256_us"] = round((time.perf_counter() - start) / n * 1e6, 1)

    async def one() -> float:
        start = time.perf_counter()
        for _ in range(n):
            await verifier.verify(token)
        return (time.perf_counter() - start) / n

    results["verify_async_us"] = round(min(asyncio.run(one()) for _ in range(3)) * 1e6, 1)
    # A resource server: the same route with and without RequireScopes.
    port = free_port()
    env = {"BENCH_JWKS": json.dumps(results["jwks"]), "BENCH_ISSUER": results["issuer"]}
    with uvicorn_app("bench.auth.resource_app:app", port, env=env, ready_path="/open") as url:
        results["resource_open"] = load(url, "GET", "/open", {})
        results["resource_protected"] = load(
            url, "GET", "/protected", {"Authorization": f"Bearer {token}"}
        )
    open_rps, prot_rps = results["resource_open"]["rps"], results["resource_protected"]["rps"]
    results["verification_overhead_us"] = round((1 / prot_rps - 1 / open_rps) * 1e6, 1)


def bench_revocation_check(results: dict[str, Any]) -> None:
    """µs per ``verify`` of a remembered token: no revocation check, and a resource server's check
    against an empty list and against 10,000 revocations (in process; no server needed)."""
    from medmesh.platform.testing import TokenFactory
    from medmesh.platform.tokens import RevocationFeed, TokenVerifier, revocation_key

    tokens = TokenFactory("http://auth.bench")
    token = tokens.token("system/*.rs", audience="medmesh-phi")
    n = 20_000

    def feed(entries: int) -> RevocationFeed:
        revocations = RevocationFeed("http://auth.bench/oauth/revocations")
        revocations._synced_at = revocations.clock()  # as after a pull
        for i in range(entries):
            revocations.entries.add(revocation_key("jti", f"jti-{i}"), 0, time.time() + 3600)
        return revocations

    async def per_verify(verifier: TokenVerifier) -> float:
        await verifier.verify(token)
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            for _ in range(n):
                await verifier.verify(token)
            best = min(best, (time.perf_counter() - start) / n)
        return round(best * 1e6, 2)

    for name, revocations in (
        ("none", None),
        ("empty_list", feed(0)),
        ("10k_list", feed(10_000)),
    ):
        verifier = TokenVerifier(
            tokens.issuer, "medmesh-phi", jwks=tokens.jwks(), revocations=revocations
        )
        results[f"verify_remembered_revocations_{name}_us"] = asyncio.run(per_verify(verifier))


def _grant_figures(name: str, measured: dict[str, Any], control: float) -> dict[str, Any]:
    return {
        f"{name}_tokens_per_s": measured["rps"],
        f"{name}_ratio_to_control": round(measured["rps"] / control, 3),
        f"{name}_p95_ms": measured["p95_ms"],
        f"{name}_server_cpu_us": measured.get("server_cpu_us_per_request"),
    }


def bench_jws_libraries(results: dict[str, Any], rounds: int) -> None:
    """The JWS rows (``bench_jws``) and, per library, whether it is within 10 % on every row."""
    figures = bench_jws.measure(rounds)
    results.update(figures)
    results["jws_library_within_10_percent"] = {
        library: bench_jws.within(figures, library) for library in ("joserfc", "pyjwt")
    }


def main() -> dict[str, Any]:
    results: dict[str, Any] = {}
    bench_jws_libraries(results, rounds=7)
    bench_control(results)
    bench_auth_service(results)
    bench_auth_service(results, "ES256")
    bench_verification(results)
    bench_revocation_check(results)
    control = results["control_form"]["rps"]
    report = {
        "control_bare_fastapi_form_rps": control,
        "control_bare_fastapi_ping_rps": results["control_ping"]["rps"],
        **_grant_figures("client_credentials", results["client_credentials"], control),
        **_grant_figures("client_credentials_es256", results["client_credentials_ES256"], control),
        "introspections_per_s": results["introspection"]["rps"],
        "introspection_ratio_to_control": round(results["introspection"]["rps"] / control, 3),
        "introspection_p95_ms": results["introspection"]["p95_ms"],
        "introspection_server_cpu_us": results["introspection"].get("server_cpu_us_per_request"),
        "control_form_server_cpu_us": results["control_form"].get("server_cpu_us_per_request"),
        "verify_full_signature_check_us": results["verify_cached_us"],
        "verify_full_signature_check_es256_us": results["verify_cached_es256_us"],
        "verify_remembered_token_us": results["verify_async_us"],
        "resource_route_open_rps": results["resource_open"]["rps"],
        "resource_route_protected_rps": results["resource_protected"]["rps"],
        "verification_overhead_per_request_us": results["verification_overhead_us"],
        **{k: v for k, v in results.items() if k.startswith("verify_remembered_revocations_")},
        **{k: v for k, v in results.items() if k.startswith("jws_")},
        "errors": {
            k: v["errors"] for k, v in results.items() if isinstance(v, dict) and "errors" in v
        },
        "targets": {
            "client_credentials_per_s": 2000,
            "introspections_per_s": 5000,
            "verification_us": 100,
        },
    }
    return report


if __name__ == "__main__":
    if "--quick" in sys.argv:
        # In process only (no servers): what the per-request revocation check costs, and the JWS
        # implementations compared (fewer rounds).
        quick: dict[str, Any] = {}
        bench_revocation_check(quick)
        bench_jws_libraries(quick, rounds=3)
        print(json.dumps(quick, indent=2))
    else:
        print(json.dumps(main(), indent=2))
