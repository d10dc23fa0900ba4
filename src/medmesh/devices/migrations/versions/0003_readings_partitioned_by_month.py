"""readings partitioned by month (PostgreSQL)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04 15:00:00

On PostgreSQL ``readings`` becomes a table partitioned by range of ``ts``: one partition a month
from January 2000 (``readings_2026_12``), ``readings_before_2000`` for older timestamps. A
partitioned table's unique keys must hold the partition key, so its primary key becomes
(device_id, reading_id, ts) and ``reading_keys`` keeps (device_id, reading_id) unique for the
duplicate check. The rows are moved: a new partitioned table is filled from the old one (with a
partition for each month they cover), the keys are taken from them, and the new table takes the
old one's name, all in the migration's transaction. Indexes are built after the rows are in.
SQLite keeps its plain table: nothing changes there. See
docs/decisions/0038-devices-readings-partitioned-by-month.md.

This migration spells out its partitions' names and bounds rather than importing
``medmesh.devices.partitions``, so it stays what it was when that module changes.
"""

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

import medmesh.platform.db

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = "device_id, reading_id, ts, metric, value, components, unit, patient_ref, received"
FIRST_MONTH = datetime(2000, 1, 1, tzinfo=UTC)


def _reading_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("device_id", sa.String(length=40), nullable=False),
        sa.Column("reading_id", sa.String(length=128), nullable=False),
        sa.Column("ts", medmesh.platform.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("metric", sa.String(length=32), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("components", sa.JSON(), nullable=True),
        sa.Column("unit", sa.String(length=32), nullable=False),
        sa.Column("patient_ref", sa.String(length=80), nullable=True),
        sa.Column("received", medmesh.platform.db.types.UTCDateTime(timezone=True), nullable=False),
    ]


def _index_readings(primary_key: list[str]) -> None:
    op.create_primary_key("pk_readings", "readings", primary_key)
    op.create_index("ix_readings_device_time", "readings", ["device_id", "ts"], unique=False)
    op.create_index("ix_readings_patient_time", "readings", ["patient_ref", "ts"], unique=False)


def _literal(ts: datetime) -> str:
    return f"'{ts.isoformat(sep=' ')}'"


def _next_month(start: datetime) -> datetime:
    if start.month == 12:
        return start.replace(year=start.year + 1, month=1)
    return start.replace(month=start.month + 1)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.create_table("readings_by_month", *_reading_columns(), postgresql_partition_by="RANGE (ts)")
    op.execute(
        "CREATE TABLE readings_before_2000 PARTITION OF readings_by_month"
        f" FOR VALUES FROM (MINVALUE) TO ({_literal(FIRST_MONTH)})"
    )
    months = op.get_bind().execute(
        sa.text(
            "SELECT DISTINCT date_trunc('month', ts AT TIME ZONE 'UTC') FROM readings"
            " WHERE ts >= :first"
        ),
        {"first": FIRST_MONTH},
    )
    for (month,) in months.all():
        start = month.replace(tzinfo=UTC)
        op.execute(
            f"CREATE TABLE readings_{start.year:04d}_{start.month:02d}"
            " PARTITION OF readings_by_month"
            f" FOR VALUES FROM ({_literal(start)}) TO ({_literal(_next_month(start))})"
        )
    op.execute(f"INSERT INTO readings_by_month ({COLUMNS}) SELECT {COLUMNS} FROM readings")  # noqa: S608 - fixed names
    op.create_table(
        "reading_keys",
        sa.Column("device_id", sa.String(length=40), nullable=False),
        sa.Column("reading_id", sa.String(length=128), nullable=False),
        sa.Column("ts", medmesh.platform.db.types.UTCDateTime(timezone=True), nullable=False),
    )
    op.execute(
        "INSERT INTO reading_keys (device_id, reading_id, ts)"
        " SELECT device_id, reading_id, ts FROM readings"
    )
    op.create_primary_key("pk_reading_keys", "reading_keys", ["device_id", "reading_id"])
    op.drop_table("readings")
    op.rename_table("readings_by_month", "readings")
    _index_readings(["device_id", "reading_id", "ts"])


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.create_table("readings_plain", *_reading_columns())
    op.execute(f"INSERT INTO readings_plain ({COLUMNS}) SELECT {COLUMNS} FROM readings")  # noqa: S608 - fixed names
    op.drop_table("readings")  # and every partition with it
    op.drop_table("reading_keys")
    op.rename_table("readings_plain", "readings")
    _index_readings(["device_id", "reading_id"])
