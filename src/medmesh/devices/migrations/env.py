"""Alembic environment of the medical-device service: its tables and the platform's (audit,
outbox: Bundles waiting for phi-service)."""

from alembic.runtime.environment import NameFilterParentNames, NameFilterType

from medmesh.devices.models import DevicesBase
from medmesh.devices.partitions import is_partition
from medmesh.platform import audit, outbox  # noqa: F401 - registers the platform tables
from medmesh.platform.db import Base, run_migrations_online

HAND_WRITTEN = frozenset(
    {"reading_keys", "reading_chunks", "reading_chunk_keys", "reading_chunk_sequence"}
)


def include_name(
    name: str | None, type_: NameFilterType, parent_names: NameFilterParentNames
) -> bool:
    """Autogenerate compares the models of both databases: PostgreSQL's partitions of readings
    and its reading_keys (migration 0003), SQLite's reading chunks, their keys and its view
    ``readings`` (migration 0005), all written by hand, are left alone."""
    return type_ != "table" or not (name in HAND_WRITTEN or is_partition(name or ""))


run_migrations_online([DevicesBase.metadata, Base.metadata], include_name)
