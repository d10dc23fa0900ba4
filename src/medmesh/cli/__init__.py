"""The ``medmesh`` command: up, serve, migrate, admin, audit, openapi, settings-doc."""

from __future__ import annotations

import typer

from medmesh.cli.admin import admin_app
from medmesh.cli.audit import audit_app
from medmesh.cli.devices_simulate import devices_app
from medmesh.cli.openapi import openapi, openapi_document
from medmesh.cli.phi_import import phi_app
from medmesh.cli.run import migrate, serve, up
from medmesh.cli.services import SERVICES, ServiceEntry
from medmesh.cli.settings_doc import settings_doc
from medmesh.cli.synth import synth

app = typer.Typer(help="medmesh: run, migrate and administer the services.", no_args_is_help=True)
app.command()(serve)
app.command()(migrate)
app.command()(up)
app.command()(openapi)
app.command("settings-doc")(settings_doc)
app.command("synth")(synth)
app.add_typer(admin_app, name="admin")
app.add_typer(audit_app, name="audit")
app.add_typer(phi_app, name="phi")
app.add_typer(devices_app, name="devices")

__all__ = ["SERVICES", "ServiceEntry", "app", "openapi_document"]
