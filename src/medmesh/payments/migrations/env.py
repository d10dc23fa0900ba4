"""Alembic environment of payment-gateway: its own tables and the platform's (audit, outbox)."""

from medmesh.payments.models import PaymentsBase
from medmesh.platform import audit, outbox  # noqa: F401 - registers the platform tables
from medmesh.platform.db import Base, run_migrations_online

run_migrations_online([PaymentsBase.metadata, Base.metadata])
