"""`medmesh serve`, `medmesh migrate` and `medmesh up` (every service as its own process)."""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import typer

from medmesh.cli.seeding import DEFAULT_SYNTHETIC_PATIENTS, seed_synthetic_patients
from medmesh.cli.services import SERVICES
from medmesh.cli.services import echo as _echo
from medmesh.cli.services import service_entry as _entry
from medmesh.platform.config import SERVICE_PORTS


def serve(
    service: str = typer.Argument(..., help="auth | phi | synthetic | payments | devices"),
    port: int = typer.Option(0, help="port (default: the service's own, e.g. 8001 for auth)"),
    host: str = typer.Option("", help="bind address (default: MEDMESH_<SVC>_HOST or 127.0.0.1)"),
    migrate_first: bool = typer.Option(False, "--migrate", help="apply migrations before serving"),
) -> None:
    """Run one service in this process (SIGTERM drains, then stops)."""
    from medmesh.platform.web import run_app

    entry = _entry(service)
    overrides: dict[str, Any] = {}
    if port:
        overrides["port"] = port
    if host:
        overrides["host"] = host
    settings = entry.load_settings(**overrides)
    if migrate_first:
        asyncio.run(entry.migrate(settings.effective_database_url))
    module = importlib.import_module(entry.module)
    fastapi_app = module.create_app(settings)
    run_app(
        fastapi_app,
        settings.host,
        settings.effective_port,
        drain_seconds=settings.drain_seconds,
        header_read_timeout=settings.header_read_timeout,
        max_header_bytes=settings.max_header_bytes,
    )


def migrate(
    service: str = typer.Argument(..., help="the service whose database to upgrade"),
) -> None:
    """Apply a service's database migrations (idempotent)."""
    entry = _entry(service)
    settings = entry.load_settings()
    asyncio.run(entry.migrate(settings.effective_database_url))
    _echo(f"{service}: database is at the latest revision")


# --- up -------------------------------------------------------------------------------------


def _credentials_path(var_dir: Path) -> Path:
    return var_dir / "credentials.json"


def _bootstrap_auth(var_dir: Path) -> dict[str, Any]:
    """Create the admin user and demo clients on first run; keep their secrets in var/ (dev only)."""
    from medmesh.auth.bootstrap import bootstrap
    from medmesh.auth.config import AuthSettings
    from medmesh.platform.db import Database

    settings = AuthSettings(var_dir=var_dir)
    path = _credentials_path(var_dir)
    stored: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {"clients": {}}

    async def run() -> Any:
        database = Database(settings.effective_database_url)
        try:
            return await bootstrap(
                database,
                admin_username=settings.bootstrap_admin_username,
                admin_password=settings.bootstrap_admin_password,
            )
        finally:
            await database.dispose()

    result = asyncio.run(run())
    if result.admin_password is not None:
        stored["admin_username"] = result.admin_username
        stored["admin_password"] = result.admin_password
    stored["clients"].update(result.clients)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(json.dumps(stored, indent=2))
    stored["new"] = bool(result.admin_password or result.clients)
    return stored


def _wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"the service exited with status {process.returncode}; see its log in var/"
            )
        try:
            if httpx.get(url + "/readyz", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not become ready in {timeout:.0f} s")


def _admin_token(auth_url: str, creds: dict[str, Any]) -> str | None:
    from medmesh.auth.bootstrap import CLI_CLIENT_ID

    secret = creds.get("clients", {}).get(CLI_CLIENT_ID)
    password = creds.get("admin_password")
    if not secret or not password:
        return None
    response = httpx.post(
        auth_url + "/oauth/token",
        data={
            "grant_type": "password",
            "username": creds.get("admin_username", "admin"),
            "password": password,
        },
        auth=(CLI_CLIENT_ID, secret),
        timeout=30,
    )
    return str(response.json()["access_token"]) if response.status_code == 200 else None


def up(
    services: str = typer.Option(",".join(SERVICES), help="comma-separated services to start"),
    var_dir: Path = typer.Option(
        Path("var"), help="where SQLite files, logs and dev credentials live"
    ),
    synthetic_patients: int = typer.Option(
        DEFAULT_SYNTHETIC_PATIENTS,
        "--synthetic-patients",
        envvar="MEDMESH_UP_SYNTHETIC_PATIENTS",
        min=0,
        help="synthetic patients to load into phi (0: none); the same ones every time",
    ),
) -> None:
    """Start every service as its own process (SQLite in var/), seed demo data, print URLs and a token.

    phi gets the demo FHIR examples and, through synthetic-phi-service, synthetic patients.
    Ctrl-C stops them all cleanly."""
    names = [n.strip() for n in services.split(",") if n.strip()]
    for name in names:
        _entry(name)
    var_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ}  # noqa: TID251 - children inherit the caller's environment
    auth_url = f"http://127.0.0.1:{SERVICE_PORTS['auth']}"
    for name in names:
        prefix = f"MEDMESH_{name.upper()}_"
        if name != "auth" and "auth" in names:
            # Tokens come from the auth process started here: verify them with its JWKS.
            env.setdefault(prefix + "ISSUER", env.get("MEDMESH_AUTH_ISSUER", auth_url))
        env.setdefault(prefix + "VAR_DIR", str(var_dir.resolve()))
        env.setdefault(prefix + "LOG_FILE", str((var_dir / f"{name}.log").resolve()))
        env.setdefault(prefix + "DRAIN_SECONDS", "0")
        entry = SERVICES[name]
        settings = entry.settings_class()(var_dir=var_dir.resolve())
        asyncio.run(entry.migrate(settings.effective_database_url))
    if "auth" in names:
        env.setdefault("MEDMESH_AUTH_ISSUER", auth_url)
    creds = _bootstrap_auth(var_dir.resolve()) if "auth" in names else {}
    if "synthetic" in names:
        # Jobs with target phi load through the phi started here, with synthetic's own client.
        env.setdefault("MEDMESH_SYNTHETIC_PHI_URL", f"http://127.0.0.1:{SERVICE_PORTS['phi']}")
        secret = creds.get("clients", {}).get("svc-synthetic")
        if secret:
            env.setdefault("MEDMESH_SYNTHETIC_PHI_CLIENT_SECRET", secret)

    processes: dict[str, subprocess.Popen[bytes]] = {}

    def stop_all(*_: object) -> None:
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()

    try:
        for name in names:
            port = SERVICE_PORTS[name]
            processes[name] = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                [sys.executable, "-m", "medmesh.cli", "serve", name, "--port", str(port)], env=env
            )
        for name in names:
            _wait_ready(f"http://127.0.0.1:{SERVICE_PORTS[name]}", processes[name])
        _print_summary(names, creds, var_dir, synthetic_patients)
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        while all(p.poll() is None for p in processes.values()):
            time.sleep(0.5)
        _echo("a service stopped; stopping the others")
    except KeyboardInterrupt:
        _echo("\nstopping ...")
    finally:
        stop_all()
    _echo("stopped")


def _print_summary(
    names: list[str], creds: dict[str, Any], var_dir: Path, synthetic_patients: int
) -> None:
    _echo("\nmedmesh is running:")
    for name in names:
        url = f"http://127.0.0.1:{SERVICE_PORTS[name]}"
        _echo(f"  {name:<10} {url}   docs {url}/docs   metrics {url}/metrics")
    if "auth" in names:
        auth_url = f"http://127.0.0.1:{SERVICE_PORTS['auth']}"
        if creds.get("new"):
            _echo(
                f"\nadmin user: {creds.get('admin_username')}  password: {creds.get('admin_password')}"
            )
            for client_id, secret in creds.get("clients", {}).items():
                _echo(f"client {client_id}: {secret}")
        _echo(f"\n(dev credentials are kept in {_credentials_path(var_dir)}, readable only by you)")
        token = _admin_token(auth_url, creds)
        if token:
            _echo(f"\nadmin access token (15 min):\n{token}\n")
            _echo(f"try: curl -s {auth_url}/admin/users -H 'Authorization: Bearer {token[:16]}...'")
            if "phi" in names:
                _seed_phi(token)
            if "phi" in names and "synthetic" in names and synthetic_patients > 0:
                _seed_synthetic(token, synthetic_patients)
    _echo(
        "\nlogs: "
        + ", ".join(str(var_dir / f"{n}.log") for n in names)
        + "\nCtrl-C stops everything."
    )


def _seed_phi(token: str) -> None:
    """Load the demo FHIR resources (idempotent) and show how to read them."""
    from medmesh.phi.demo import seed_demo

    fhir = f"http://127.0.0.1:{SERVICE_PORTS['phi']}/fhir"
    try:
        report = asyncio.run(seed_demo(fhir, token))
    except (RuntimeError, httpx.HTTPError) as exc:
        _echo(f"\nphi: demo data not loaded ({exc})")
        return
    _echo(
        f"\nphi FHIR base: {fhir}  (demo resources: {len(report.created)} loaded now, "
        f"{len(report.present)} already there)"
    )
    _echo(
        f"try: curl -s {fhir}/Patient/example/\\$everything "
        '-H "Authorization: Bearer $TOKEN"\n'
        f"     curl -s '{fhir}/Observation?subject=Patient/example' "
        '-H "Authorization: Bearer $TOKEN"   (TOKEN = the admin access token above)'
    )


def _seed_synthetic(token: str, patients: int) -> None:
    """Load synthetic patients into phi through a synthetic-phi-service job, and say so."""
    url = f"http://127.0.0.1:{SERVICE_PORTS['synthetic']}"
    _echo(f"\nsynthetic: loading {patients} synthetic patients into phi ...")
    try:
        _echo("synthetic: " + seed_synthetic_patients(url, token, patients))
    except (RuntimeError, httpx.HTTPError) as exc:
        _echo(f"synthetic: patients not loaded ({exc})")
        return
    _echo(
        f'try: curl -s {url}/v1/jobs -H "Authorization: Bearer $TOKEN"\n'
        f'     curl -s -X POST {url}/v1/generate -H "Authorization: Bearer $TOKEN" '
        "-H 'Content-Type: application/json' -d '{\"size\": 2, \"seed\": 42}'"
    )
