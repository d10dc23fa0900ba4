"""Benchmark of signing in from an app (issue 17): authorization-code exchanges per second with
ES256 keys, with their ratio to client_credentials tokens from the same process in the same
run, and login pages rendered per second, with a bare FastAPI control in the same run.

- The app is a public SMART app asking for ``openid fhirUser launch/patient offline_access
  patient/Patient.rs``: each exchange checks PKCE, spends the code, signs an access token and an
  ID token, stores a refresh token and writes an audit record.
- Codes are one-time, so they are made first (one signed-in browser whose consent is remembered
  asks ``/oauth/authorize`` for a new code each time) and each exchange request differs
  (``distinct_load``); client_credentials goes through the same driver, request count and
  connections, so the ratio compares like with like.
- The login page is what a browser without a session gets from ``/oauth/authorize``: a new
  sign-in session (a row and a cookie), the page rendered with its CSRF token and CSP.

One auth worker pinned to core 0, the load generator on core 1, 32 connections.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import html
import json
import re
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench.auth.bench_auth import bootstrap_clients
from bench.auth.distinct_load import run_distinct
from bench.loadgen import build_request
from bench.servers import SERVER_PIDS, free_port, load, medmesh_service, uvicorn_app

REDIRECT_URI = "https://app.example/callback"
APP_SCOPE = "openid fhirUser launch/patient offline_access patient/Patient.rs"
ADMIN_PASSWORD = "bench admin passphrase"
PATIENT_PASSWORD = "bench patient passphrase"
FORM = "application/x-www-form-urlencoded"
_INPUT = re.compile(r'<input type="(?:hidden|checkbox)"[^>]*name="([^"]+)"[^>]*value="([^"]*)"')
#: Exchanges measured per run (after WARMUP more), and the same count of client_credentials.
EXCHANGES = 4000
WARMUP = 400


def _fields(page: str) -> list[tuple[str, str]]:
    return [(name, html.unescape(value)) for name, value in _INPUT.findall(page)]


def _code_of(location: str) -> str:
    return parse_qs(urlsplit(location).query)["code"][0]


class SignedInApp:
    """A registered public app, a patient, and a browser signed in with consent remembered."""

    def __init__(self, url: str, cli_secret: str) -> None:
        self.url = url
        admin = httpx.post(
            url + "/oauth/token",
            data={"grant_type": "password", "username": "admin", "password": ADMIN_PASSWORD},
            auth=("medmesh-cli", cli_secret),
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {admin}"}
        client = httpx.post(
            url + "/admin/clients",
            headers=headers,
            json={
                "name": "bench app",
                "public": True,
                "grant_types": ["authorization_code", "refresh_token"],
                "scope": APP_SCOPE,
                "redirect_uris": [REDIRECT_URI],
            },
        )
        client.raise_for_status()
        self.client_id = client.json()["client_id"]
        httpx.post(
            url + "/admin/users",
            headers=headers,
            json={
                "username": "bench.patient",
                "password": PATIENT_PASSWORD,
                "roles": ["patient"],
                "patient_id": "pat-1",
                "fhir_user": "Patient/pat-1",
            },
        ).raise_for_status()
        self.verifier = secrets.token_urlsafe(48)
        digest = hashlib.sha256(self.verifier.encode()).digest()
        challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        self.query = urlencode(
            {
                "response_type": "code",
                "client_id": self.client_id,
                "redirect_uri": REDIRECT_URI,
                "scope": APP_SCOPE,
                "state": "bench",
                "code_challenge": challenge,
                "code_challenge_method": "S256",
                "aud": "http://127.0.0.1:8002/fhir",
            }
        )
        self.browser = httpx.Client(base_url=url)
        page = self.browser.get("/oauth/authorize?" + self.query)
        fields = [*_fields(page.text), ("username", "bench.patient")]
        signed_in = self.browser.post(
            "/oauth/authorize/login",
            content=urlencode([*fields, ("password", PATIENT_PASSWORD)]),
            headers={"Content-Type": FORM},
        )
        consent = self.browser.get(signed_in.headers["location"])
        granted = self.browser.post(
            "/oauth/authorize/consent",
            content=urlencode([*_fields(consent.text), ("decision", "allow")]),
            headers={"Content-Type": FORM},
        )
        assert granted.status_code == 303, granted.text
        _code_of(granted.headers["location"])

    def codes(self, count: int) -> list[str]:
        """``count`` new codes (consent is remembered: each authorize answers with one)."""

        async def run() -> list[str]:
            cookies = dict(self.browser.cookies.items())
            limits = httpx.Limits(max_connections=8)
            async with httpx.AsyncClient(base_url=self.url, cookies=cookies, limits=limits) as http:
                gate = asyncio.Semaphore(8)

                async def one() -> str:
                    async with gate:
                        response = await http.get("/oauth/authorize?" + self.query)
                    return _code_of(response.headers["location"])

                return list(await asyncio.gather(*(one() for _ in range(count))))

        return asyncio.run(run())

    def exchange_requests(self, codes: list[str], host: str) -> list[bytes]:
        return [
            build_request(
                "POST",
                "/oauth/token",
                host,
                {"Content-Type": FORM},
                urlencode(
                    {
                        "grant_type": "authorization_code",
                        "code": code,
                        "redirect_uri": REDIRECT_URI,
                        "code_verifier": self.verifier,
                        "client_id": self.client_id,
                    }
                ).encode(),
            )
            for code in codes
        ]


def bench_signin(results: dict[str, Any]) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="medmesh-bench-signin-"))
    port = free_port()
    env = {
        "MEDMESH_AUTH_VAR_DIR": str(tmp),
        "MEDMESH_AUTH_ISSUER": f"http://127.0.0.1:{port}",
        "MEDMESH_AUTH_DRAIN_SECONDS": "0",
        "MEDMESH_AUTH_LOG_LEVEL": "warning",
        "MEDMESH_AUTH_TOKEN_RATE_LIMIT_PER_MINUTE": "100000000",
        "MEDMESH_AUTH_SIGNING_ALG": "ES256",
        "MEDMESH_AUTH_ENVIRONMENT": "development",
        "MEDMESH_AUTH_AUTHORIZATION_CODE_TTL_SECONDS": "600",
        "MEDMESH_AUTH_BOOTSTRAP_ADMIN_PASSWORD": ADMIN_PASSWORD,
    }
    with medmesh_service("auth", port, env) as url:
        found = bootstrap_clients(env)
        app = SignedInApp(url, found["medmesh-cli"])
        host = url.removeprefix("http://")
        pid = SERVER_PIDS.get(port)
        codes = app.codes(WARMUP + EXCHANGES)
        requests = app.exchange_requests(codes, host)
        # Making the codes wrote as many rows: let the WAL checkpoint behind them finish first.
        time.sleep(3)
        run_distinct("127.0.0.1", port, requests[:WARMUP], server_pid=pid)
        results["code_exchange"] = run_distinct(
            "127.0.0.1", port, requests[WARMUP:], server_pid=pid
        ).summary()
        basic = base64.b64encode(f"demo-service:{found['demo-service']}".encode()).decode()
        grant = build_request(
            "POST",
            "/oauth/token",
            host,
            {"Authorization": f"Basic {basic}", "Content-Type": FORM},
            b"grant_type=client_credentials&scope=system%2F%2A.cruds",
        )
        run_distinct("127.0.0.1", port, [grant] * WARMUP, server_pid=pid)
        results["client_credentials"] = run_distinct(
            "127.0.0.1", port, [grant] * EXCHANGES, server_pid=pid
        ).summary()
        results["login_page"] = load(url, "GET", "/oauth/authorize?" + app.query, {})


def bench_control(results: dict[str, Any]) -> None:
    port = free_port()
    with uvicorn_app("bench.control_app:app", port) as url:
        results["control_ping"] = load(url, "GET", "/ping", {})


def main() -> dict[str, Any]:
    results: dict[str, Any] = {}
    bench_control(results)
    bench_signin(results)
    exchange, grant = results["code_exchange"], results["client_credentials"]
    login, control = results["login_page"], results["control_ping"]
    return {
        "code_exchanges_per_s_es256": exchange["rps"],
        "code_exchange_p95_ms": exchange["p95_ms"],
        "code_exchange_server_cpu_us": exchange.get("server_cpu_us_per_request"),
        "client_credentials_per_s_es256": grant["rps"],
        "client_credentials_server_cpu_us": grant.get("server_cpu_us_per_request"),
        "code_exchange_ratio_to_client_credentials": round(exchange["rps"] / grant["rps"], 3),
        "login_pages_per_s": login["rps"],
        "login_page_p95_ms": login["p95_ms"],
        "login_page_server_cpu_us": login.get("server_cpu_us_per_request"),
        "control_bare_fastapi_ping_rps": control["rps"],
        "control_ping_server_cpu_us": control.get("server_cpu_us_per_request"),
        "login_page_ratio_to_control": round(login["rps"] / control["rps"], 3),
        "errors": {
            name: figures["errors"]
            for name, figures in results.items()
            if isinstance(figures, dict) and figures.get("errors")
        },
        "targets": {"login_pages_per_s": 500},
    }


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
