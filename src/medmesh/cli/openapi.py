"""`medmesh openapi [--check]`: the generated OpenAPI document of every service."""

from __future__ import annotations

import importlib
import json
import tempfile
from pathlib import Path
from typing import Any

import typer

from medmesh.cli.services import SERVICES
from medmesh.cli.services import echo as _echo
from medmesh.cli.services import service_entry as _entry
from medmesh.platform.config import ServiceSettings


def openapi_document(service: str) -> dict[str, Any]:
    """The OpenAPI document of a service, as its app generates it."""
    entry = _entry(service)
    module = importlib.import_module(entry.module)
    # Building an app may create development files in var_dir (auth writes a key-encryption
    # key): a throwaway folder keeps generating the document free of side effects. The issuer
    # (the token URL of the security schemes) is the default one, whatever the environment says,
    # so the committed documents do not depend on where they were generated.
    issuer = ServiceSettings.model_fields["issuer"].default
    with tempfile.TemporaryDirectory(prefix="medmesh-openapi-") as scratch:
        settings = entry.load_settings(var_dir=Path(scratch), issuer=issuer)
        document: dict[str, Any] = module.create_app(settings).openapi()
    return document


def openapi(
    check: bool = typer.Option(
        False, help="fail when docs/openapi/<svc>.json is stale instead of writing it"
    ),
    out: Path = typer.Option(Path("docs/openapi"), help="output folder"),
) -> None:
    """Write (or check) docs/openapi/<service>.json for every service."""
    stale = []
    for name in SERVICES:
        text = json.dumps(openapi_document(name), indent=2, sort_keys=True) + "\n"
        path = out / f"{name}.json"
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path))
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        _echo(f"wrote {path}")
    if stale:
        _echo("stale OpenAPI documents (run `make openapi`): " + ", ".join(stale))
        raise typer.Exit(1)
