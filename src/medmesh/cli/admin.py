"""`medmesh admin ...`: administer the services directly on their databases."""

from __future__ import annotations

import asyncio
from typing import Any

import typer

from medmesh.cli.services import echo as _echo

admin_app = typer.Typer(
    help="Administer the services directly on their databases.", no_args_is_help=True
)


def _auth_database() -> Any:
    from medmesh.auth.config import AuthSettings
    from medmesh.platform.db import Database

    return Database(AuthSettings().effective_database_url)


@admin_app.command("bootstrap")
def admin_bootstrap() -> None:
    """Create the built-in roles, the admin user and the demo clients if missing; show new secrets once."""
    from medmesh.auth.bootstrap import bootstrap
    from medmesh.auth.config import AuthSettings

    settings = AuthSettings()

    async def run() -> Any:
        database = _auth_database()
        try:
            return await bootstrap(
                database,
                admin_username=settings.bootstrap_admin_username,
                admin_password=settings.bootstrap_admin_password,
            )
        finally:
            await database.dispose()

    result = asyncio.run(run())
    if result.admin_password:
        _echo(f"admin user {result.admin_username} password: {result.admin_password}")
    for client_id, secret in result.clients.items():
        _echo(f"client {client_id} secret: {secret}")
    if not result.admin_password and not result.clients:
        _echo("nothing to do: admin user and clients exist")


@admin_app.command("rotate-keys")
def admin_rotate_keys() -> None:
    """Rotate the token-signing key (running replicas pick it up within 30 s)."""
    from medmesh.auth.config import AuthSettings
    from medmesh.auth.keys.service import SigningKeyService
    from medmesh.auth.main import MAX_TOKEN_TTL_SECONDS, load_kek
    from medmesh.platform.audit import (
        AuditRecord,
        AuditTrail,
        audit_database_for,
        audit_sealing,
        ensure_audit_tables,
    )

    settings = AuthSettings()

    async def run() -> str:
        database = _auth_database()
        audit_db = audit_database_for(database)
        if audit_db is not database:
            await ensure_audit_tables(audit_db)
        trail = AuditTrail(audit_db, "auth", sealing=audit_sealing(settings))
        await trail.start()
        try:
            keys = SigningKeyService(load_kek(settings), MAX_TOKEN_TTL_SECONDS)
            async with database.unit_of_work() as session:
                record = await keys.rotate(session)
            await trail.record(
                AuditRecord(
                    action="auth.key_rotated",
                    actor="cli",
                    resource_type="SigningKey",
                    resource_id=record.kid,
                )
            )
            return record.kid
        finally:
            await trail.stop()
            await database.dispose()
            if audit_db is not database:
                await audit_db.dispose()

    _echo(f"new active signing key: {asyncio.run(run())}")


@admin_app.command("rotate-phi-keys")
def admin_rotate_phi_keys(
    page_size: int = typer.Option(500, min=1, help="versions re-encrypted per transaction"),
    start_after: str = typer.Option(
        "", help="resume after Type/id/version (the last key a previous run printed)"
    ),
) -> None:
    """Re-encrypt every stored phi resource version under the active key (the first one of
    MEDMESH_PHI_ENCRYPTION_KEYS). Resumable, one page per transaction, audited."""
    from medmesh.phi.config import PhiSettings
    from medmesh.phi.rotation import RotationReport, rotate_stored_keys

    cursor: tuple[str, str, int] | None = None
    if start_after:
        parts = start_after.split("/")
        if len(parts) != 3 or not (parts[2].isascii() and parts[2].isdigit()):
            raise typer.BadParameter("--start-after is Type/id/version, e.g. Patient/abc/2")
        cursor = (parts[0], parts[1], int(parts[2]))

    def progress(report: RotationReport) -> None:
        if report.pages % 20 == 0 and report.last_key is not None:
            key = "/".join(map(str, report.last_key))
            _echo(f"  ... {report.scanned} scanned, {report.rotated} re-encrypted (at {key})")

    report = asyncio.run(
        rotate_stored_keys(PhiSettings(), page_size=page_size, start_after=cursor, on_page=progress)
    )
    _echo(
        f"phi: active key {report.active_kid}: {report.scanned} versions scanned, "
        f"{report.rotated} re-encrypted ({report.current_rows} current), "
        f"{report.remaining} still under older keys"
    )
    if report.remaining:
        raise typer.Exit(1)


@admin_app.command("repair-phi-references")
def admin_repair_phi_references(
    base_url: list[str] = typer.Option(
        [],
        "--base-url",
        help="another base the service was reached under (http://127.0.0.1:8002/fhir); "
        "MEDMESH_PHI_BASE_URL is always one",
    ),
    page_size: int = typer.Option(500, min=1, help="rows repaired per transaction"),
) -> None:
    """Re-derive the compartment and reference index rows of stored phi resources written
    before references were canonical (migration 0005 does it itself when the phi keys are
    set where it runs). Rerunnable; audited as phi.references_repaired."""
    from medmesh.phi.config import PhiSettings
    from medmesh.phi.reference_repair import repair_stored_references

    report = asyncio.run(
        repair_stored_references(PhiSettings(), base_urls=base_url, page_size=page_size)
    )
    _echo(
        f"phi: {report.resources} resources and {report.versions} versions read; "
        f"{report.compartments_fixed} compartments, {report.versions_fixed} version "
        f"compartments and {report.indexes_fixed} reference indexes fixed; "
        f"{report.unreadable} unreadable"
    )
    if report.unreadable:
        raise typer.Exit(1)


@admin_app.command("add-backend-client")
def admin_add_backend_client(
    client_id: str = typer.Argument(..., help="the client's id (3-64 letters, digits, . _ -)"),
    scope: str = typer.Option("system/*.rs", help="the scopes it may ask for"),
    jwks_file: str = typer.Option("", help="a file holding its public JWK Set"),
    jwks_uri: str = typer.Option("", help="where it publishes its JWK Set (https)"),
    name: str = typer.Option("", help="a name people recognise"),
    role: list[str] = typer.Option(["service"], "--role", help="a role its tokens carry"),
) -> None:
    """Register a SMART Backend Services client: it authenticates with JWTs it signs
    (private_key_jwt) with a key of its JWK Set, given as a file or a URL. Audited."""
    import json
    from pathlib import Path

    from pydantic import ValidationError

    from medmesh.auth.clients.schemas import ClientCreate
    from medmesh.auth.clients.service import ClientService
    from medmesh.auth.config import AuthSettings
    from medmesh.platform.audit import (
        AuditRecord,
        AuditTrail,
        audit_database_for,
        audit_sealing,
        ensure_audit_tables,
    )
    from medmesh.platform.errors import MedmeshError

    if bool(jwks_file) == bool(jwks_uri):
        raise typer.BadParameter("give exactly one of --jwks-file and --jwks-uri")
    try:
        jwks = json.loads(Path(jwks_file).read_text()) if jwks_file else None
        data = ClientCreate(
            client_id=client_id,
            name=name,
            grant_types=["client_credentials"],
            scope=scope,
            roles=role,
            token_endpoint_auth_method="private_key_jwt",
            jwks=jwks,
            jwks_uri=jwks_uri or None,
        )
    except (OSError, ValueError, ValidationError) as exc:
        raise typer.BadParameter(str(exc).splitlines()[-1] if str(exc) else repr(exc)) from None
    settings = AuthSettings()

    async def run() -> None:
        database = _auth_database()
        audit_db = audit_database_for(database)
        if audit_db is not database:
            await ensure_audit_tables(audit_db)
        trail = AuditTrail(audit_db, "auth", sealing=audit_sealing(settings))
        await trail.start()
        try:
            async with database.unit_of_work() as session:
                client, _ = await ClientService().create(session, data)
            await trail.record(
                AuditRecord(
                    action="auth.client_created",
                    actor="cli",
                    resource_type="Client",
                    resource_id=client.client_id,
                    details={
                        "grant_types": ["client_credentials"],
                        "token_endpoint_auth_method": "private_key_jwt",
                    },
                )
            )
        finally:
            await trail.stop()
            await database.dispose()
            if audit_db is not database:
                await audit_db.dispose()

    try:
        asyncio.run(run())
    except MedmeshError as exc:
        _echo(f"not registered: {exc.message}")
        raise typer.Exit(1) from None
    _echo(f"backend client {client_id} registered (private_key_jwt)")
