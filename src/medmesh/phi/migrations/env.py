"""Alembic environment of phi-service: its tables and the platform's (audit, outbox)."""

from medmesh.phi import models
from medmesh.phi.bulk_import import models as import_models  # noqa: F401 - registers import_jobs
from medmesh.phi.search import models as search_models  # noqa: F401 - registers the index tables
from medmesh.platform import audit, outbox  # noqa: F401 - registers the platform tables
from medmesh.platform.db import Base, run_migrations_online

run_migrations_online([models.PhiBase.metadata, Base.metadata])
