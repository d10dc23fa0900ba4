"""``medmesh phi import DIR``: load NDJSON files (the Bulk Data layout) into phi's database."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer

from medmesh.cli.services import echo

phi_app = typer.Typer(help="phi-service data commands.", no_args_is_help=True)


@phi_app.command("import")
def phi_import(
    directory: Path = typer.Argument(
        ..., exists=True, file_okay=False, help="a folder of <Type>.ndjson files (or its ndjson/)"
    ),
    chunk_lines: int = typer.Option(500, min=1, help="lines stored per transaction"),
) -> None:
    """Store every resource of DIR's NDJSON files (one a line, ids kept) in phi: validated,
    encrypted, indexed and audited as single writes are, one transaction per chunk. Exits 1
    when a line was rejected (each listed by file and line, never by content)."""
    from medmesh.phi.bulk_import.standalone import import_directory, ndjson_files
    from medmesh.phi.config import PhiSettings

    if not ndjson_files(directory):
        typer.echo(f"no .ndjson file in {directory} or {directory / 'ndjson'}", err=True)
        raise typer.Exit(2)
    reports = asyncio.run(import_directory(PhiSettings(), directory, chunk_lines=chunk_lines))
    for report in reports:
        echo(
            f"{report.source}: {report.stored} stored, {report.rejected} rejected "
            f"({report.lines} lines)"
        )
        for issue in report.issues:
            echo(f"  {issue['diagnostics']}")
    total = sum(r.stored for r in reports)
    rejected = sum(r.rejected for r in reports)
    echo(f"phi: {total} resources stored, {rejected} lines rejected")
    if rejected:
        raise typer.Exit(1)
