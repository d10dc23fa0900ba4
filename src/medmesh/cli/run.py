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

from medmesh.cli.demo_data import print_summary, seed_demo_data
from medmesh.cli.seeding import DEFAULT_SYNTHETIC_PATIENTS
from medmesh.cli.services import SERVICES
from medmesh.cli.services import echo as _echo
from medmesh.cli.services import service_entry as _entry
from medmesh.platform.config import ServiceSettings


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

    phi gets the demo FHIR examples and, through synthetic-phi-service, synthetic patients;
    payment-gateway a customer tied to phi's demo patient and a paid copay. Each service listens
    on its own port (MEDMESH_<SVC>_PORT moves it). Ctrl-C stops them all cleanly."""
    names = [n.strip() for n in services.split(",") if n.strip()]
    for name in names:
        _entry(name)
    var_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ}  # noqa: TID251 - children inherit the caller's environment
    settings = {n: SERVICES[n].settings_class()(var_dir=var_dir.resolve()) for n in names}
    urls = {n: f"http://127.0.0.1:{settings[n].effective_port}" for n in names}
    auth_url = urls.get("auth", ServiceSettings.model_fields["issuer"].default)
    for name in names:
        prefix = f"MEDMESH_{name.upper()}_"
        if name != "auth" and "auth" in names:
            # Tokens come from the auth process started here: verify them with its JWKS.
            env.setdefault(prefix + "ISSUER", env.get("MEDMESH_AUTH_ISSUER", auth_url))
        env.setdefault(prefix + "VAR_DIR", str(var_dir.resolve()))
        env.setdefault(prefix + "LOG_FILE", str((var_dir / f"{name}.log").resolve()))
        env.setdefault(prefix + "DRAIN_SECONDS", "0")
        asyncio.run(SERVICES[name].migrate(settings[name].effective_database_url))
    if "auth" in names:
        env.setdefault("MEDMESH_AUTH_ISSUER", auth_url)
    creds = _bootstrap_auth(var_dir.resolve()) if "auth" in names else {}
    if "phi" in names:
        for name in names:
            env.update(_phi_client_env(name, settings[name], urls["phi"], creds, env))

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

    # SIGTERM stops the services as Ctrl-C does, from the first one started on (a SIGTERM
    # before the handler would end this process alone and leave its services running).
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        for name in names:
            port = settings[name].effective_port
            processes[name] = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                [sys.executable, "-m", "medmesh.cli", "serve", name, "--port", str(port)], env=env
            )
        for name in names:
            _wait_ready(urls[name], processes[name])
        token = _admin_token(auth_url, creds) if "auth" in names else None
        print_summary(urls, creds, _credentials_path(var_dir), token)
        if token:
            seed_demo_data(urls, token, synthetic_patients=synthetic_patients)
        _echo(
            "\nlogs: "
            + ", ".join(str(var_dir / f"{n}.log") for n in names)
            + "\nCtrl-C stops everything."
        )
        while all(p.poll() is None for p in processes.values()):
            time.sleep(0.5)
        _echo("a service stopped; stopping the others")
    except KeyboardInterrupt:
        _echo("\nstopping ...")
    finally:
        stop_all()
    _echo("stopped")


def _phi_client_env(
    name: str,
    settings: ServiceSettings,
    phi_url: str,
    creds: dict[str, Any],
    env: dict[str, str],
) -> dict[str, str]:
    """The phi URL and client secret of a service that calls phi (it has both settings).

    Such a service gets tokens for phi with its own client (``svc-<name>``), whose secret auth's
    bootstrap made and `medmesh up` keeps in var/credentials.json; without the secret it is
    not pointed at phi. Values the caller set are left alone.
    """
    fields = type(settings).model_fields
    if name == "phi" or not {"phi_url", "phi_client_secret"} <= set(fields):
        return {}
    client_id = str(getattr(settings, "phi_client_id", f"svc-{name}"))
    secret = creds.get("clients", {}).get(client_id)
    if not secret:
        return {}
    prefix = f"MEDMESH_{name.upper()}_"
    wiring = {prefix + "PHI_URL": phi_url, prefix + "PHI_CLIENT_SECRET": secret}
    return {key: value for key, value in wiring.items() if key not in env}
