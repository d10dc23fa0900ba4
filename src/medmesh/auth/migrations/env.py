"""Alembic environment of auth-service: its own tables and the platform's (audit, outbox)."""

from medmesh.auth.models import AuthBase
from medmesh.platform import audit, outbox  # noqa: F401 - registers the platform tables
from medmesh.platform.db import Base, run_migrations_online

run_migrations_online([AuthBase.metadata, Base.metadata])
