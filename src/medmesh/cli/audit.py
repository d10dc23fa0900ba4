"""`medmesh audit verify <svc>`: check a service's hash-chained audit trail."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import typer

from medmesh.cli.services import echo as _echo
from medmesh.cli.services import service_entry as _entry

audit_app = typer.Typer(help="Audit trails.", no_args_is_help=True)


@audit_app.command("verify")
def audit_verify(
    service: str = typer.Argument(..., help="the service whose audit trail to check"),
    checkpoints: Path | None = typer.Option(
        None,
        "--checkpoints",
        help="the signed checkpoint file to check against (default: the service's "
        "AUDIT_CHECKPOINT_FILE setting)",
    ),
) -> None:
    """Check a service's audit trail: every record's keyed link and every signed checkpoint.

    Exits 1 naming the record (changed, removed, reordered or re-linked without the key) or the
    checkpoint (forged, no longer matching its record, or beyond the last record: a deleted tail).
    """
    from medmesh.platform.audit import (
        CheckpointFileError,
        audit_database_for,
        checkpoint_path,
        load_audit_keys,
        read_checkpoints,
        verify_chain,
    )
    from medmesh.platform.db import Database

    entry = _entry(service)
    settings = entry.load_settings()
    keys = load_audit_keys(settings, create=False)
    path = checkpoints or checkpoint_path(settings)
    try:
        found = read_checkpoints(path)
    except CheckpointFileError as exc:
        _echo(f"{service}: audit trail BROKEN at {exc} in {path}")
        raise typer.Exit(1) from None

    async def run() -> Any:
        database = Database(settings.effective_database_url)
        audit_db = audit_database_for(database)
        try:
            return await verify_chain(
                audit_db, keys=keys, checkpoints=found, service=settings.service_name
            )
        finally:
            await database.dispose()
            if audit_db is not database:
                await audit_db.dispose()

    report = asyncio.run(run())
    if report.ok:
        after = report.records - report.anchored_seq
        _echo(
            f"{service}: audit trail intact ({report.records} records; "
            f"{report.checkpoints} checkpoints in {path}, "
            f"{after} records after the last one)"
        )
        return
    where = (
        f"checkpoint line {report.checkpoint_line} of {path}"
        if report.checkpoint_line is not None
        else f"record {report.first_bad_seq}"
    )
    _echo(f"{service}: audit trail BROKEN at {where}: {report.problem}")
    raise typer.Exit(1)


# --- openapi --------------------------------------------------------------------------------
