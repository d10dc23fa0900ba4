"""Alembic environment of synthetic-phi-service: its jobs table and the platform's audit trail.

No outbox: a job retries its own requests to phi-service, so the outbox tables are not created.
"""

from medmesh.platform import audit  # noqa: F401 - registers the audit tables
from medmesh.platform.db import Base, run_migrations_online
from medmesh.synthetic import models

run_migrations_online([models.SyntheticBase.metadata, Base.metadata])
