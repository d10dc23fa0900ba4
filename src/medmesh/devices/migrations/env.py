"""Alembic environment of the medical-device service: its tables and the platform's (audit,
outbox: Bundles waiting for phi-service)."""

from medmesh.devices.models import DevicesBase
from medmesh.platform import audit, outbox  # noqa: F401 - registers the platform tables
from medmesh.platform.db import Base, run_migrations_online

run_migrations_online([DevicesBase.metadata, Base.metadata])
