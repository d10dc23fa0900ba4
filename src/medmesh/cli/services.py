"""The services the CLI knows, in start order, and small shared helpers."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

import typer

from medmesh.platform.config import ServiceSettings


@dataclass(frozen=True)
class ServiceEntry:
    name: str
    module: str
    settings: str

    def settings_class(self) -> type[ServiceSettings]:
        module, _, attr = self.settings.partition(":")
        cls: type[ServiceSettings] = getattr(importlib.import_module(module), attr)
        return cls

    def load_settings(self, **overrides: Any) -> ServiceSettings:
        return self.settings_class()(**overrides)

    async def migrate(self, url: str) -> None:
        migrations = importlib.import_module(f"medmesh.{self.name}.migrations")
        await migrations.upgrade(url)


#: The services, in start order.
SERVICES: dict[str, ServiceEntry] = {
    "auth": ServiceEntry("auth", "medmesh.auth.main", "medmesh.auth.config:AuthSettings"),
    "phi": ServiceEntry("phi", "medmesh.phi.main", "medmesh.phi.config:PhiSettings"),
    "synthetic": ServiceEntry(
        "synthetic", "medmesh.synthetic.main", "medmesh.synthetic.config:SyntheticSettings"
    ),
    "payments": ServiceEntry(
        "payments", "medmesh.payments.main", "medmesh.payments.config:PaymentsSettings"
    ),
    "devices": ServiceEntry(
        "devices", "medmesh.devices.main", "medmesh.devices.config:DevicesSettings"
    ),
}


def service_entry(name: str) -> ServiceEntry:
    if name not in SERVICES:
        raise typer.BadParameter(f"unknown service {name!r}; known: {', '.join(SERVICES)}")
    return SERVICES[name]


def echo(message: str = "") -> None:
    typer.echo(message)
