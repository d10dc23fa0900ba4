"""`medmesh audit verify <svc>`: check a service's hash-chained audit trail."""

from __future__ import annotations

import asyncio
from typing import Any

import typer

from medmesh.cli.services import echo as _echo
from medmesh.cli.services import service_entry as _entry

audit_app = typer.Typer(help="Audit trails.", no_args_is_help=True)


@audit_app.command("verify")
def audit_verify(
    service: str = typer.Argument(..., help="the service whose audit trail to check"),
) -> None:
    """Check a service's hash-chained audit trail; exits 1 when a record was changed, removed or reordered."""
    from medmesh.platform.audit import audit_database_for
    from medmesh.platform.audit_reading import verify_chain
    from medmesh.platform.db import Database

    entry = _entry(service)
    settings = entry.load_settings()

    async def run() -> Any:
        database = Database(settings.effective_database_url)
        audit_db = audit_database_for(database)
        try:
            return await verify_chain(audit_db)
        finally:
            await database.dispose()
            if audit_db is not database:
                await audit_db.dispose()

    report = asyncio.run(run())
    if report.ok:
        _echo(f"{service}: audit trail intact ({report.records} records)")
        return
    _echo(f"{service}: audit trail BROKEN at record {report.first_bad_seq}: {report.problem}")
    raise typer.Exit(1)


# --- openapi --------------------------------------------------------------------------------
