"""SQLite readings in chunks

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 22:10:00

On SQLite the readings move into ``reading_chunks`` (one row per device, patient, metric, unit,
UTC hour and time received, its readings a JSON array, their values summarised) with their keys in the ``WITHOUT ROWID``
table ``reading_chunk_keys`` and the last chunk id given in ``reading_chunk_sequence``; ``readings`` becomes a view of one row per reading over them. The
downgrade makes the table again from the view. PostgreSQL keeps its partitioned rows: nothing
changes there.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import medmesh.platform.db.types

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: One row per reading of ``reading_chunks``, the columns of the table it replaces.
READINGS_VIEW = """
CREATE VIEW readings AS
SELECT c.device_id AS device_id,
       r.value ->> 0 AS reading_id,
       r.value ->> 1 AS ts,
       c.metric AS metric,
       r.value ->> 2 AS value,
       CASE WHEN r.value ->> 3 IS NULL THEN NULL ELSE r.value -> 3 END AS components,
       c.unit AS unit,
       c.patient_ref AS patient_ref,
       coalesce(r.value ->> 4, c.received) AS received
FROM reading_chunks AS c, json_each(c.readings) AS r
"""
COLUMNS = "device_id, reading_id, ts, metric, value, components, unit, patient_ref, received"


def _datetime() -> medmesh.platform.db.types.UTCDateTime:
    return medmesh.platform.db.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.create_table(
        "reading_chunks",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("device_id", sa.String(length=40), nullable=False),
        sa.Column("patient_ref", sa.String(length=80), nullable=True),
        sa.Column("metric", sa.String(length=32), nullable=False),
        sa.Column("unit", sa.String(length=32), nullable=False),
        sa.Column("first_ts", _datetime(), nullable=False),
        sa.Column("last_ts", _datetime(), nullable=False),
        sa.Column("received", _datetime(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("value_min", sa.Float(), nullable=False),
        sa.Column("value_max", sa.Float(), nullable=False),
        sa.Column("value_sum", sa.Float(), nullable=False),
        sa.Column("readings", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reading_chunks")),
    )
    op.create_index("ix_reading_chunks_device_time", "reading_chunks", ["device_id", "first_ts"])
    op.create_index("ix_reading_chunks_patient_time", "reading_chunks", ["patient_ref", "first_ts"])
    op.create_table(
        "reading_chunk_keys",
        sa.Column("device_id", sa.String(length=40), nullable=False),
        sa.Column("reading_id", sa.String(length=128), nullable=False),
        sa.Column("chunk_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("device_id", "reading_id", name=op.f("pk_reading_chunk_keys")),
        sqlite_with_rowid=False,
    )
    op.execute(
        """
INSERT INTO reading_chunks (
    id, device_id, patient_ref, metric, unit, first_ts, last_ts, received, count,
    value_min, value_max, value_sum, readings
)
SELECT row_number() OVER (ORDER BY min(ts), device_id, patient_ref, metric, unit, received),
       device_id, patient_ref, metric, unit, min(ts), max(ts), received, count(*),
       min(value), max(value), sum(value),
       json_group_array(json_array(reading_id, ts, value, json(components)))
FROM (SELECT * FROM readings ORDER BY ts, reading_id)
GROUP BY device_id, patient_ref, metric, unit, substr(ts, 1, 13), received
"""
    )
    op.create_table(
        "reading_chunk_sequence",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reading_chunk_sequence")),
    )
    op.execute(
        "INSERT INTO reading_chunk_sequence (id, last)"
        " SELECT 1, coalesce(max(id), 0) FROM reading_chunks"
    )
    op.execute(
        "INSERT INTO reading_chunk_keys (device_id, reading_id, chunk_id)"
        " SELECT c.device_id, r.value ->> 0, c.id"
        " FROM reading_chunks AS c, json_each(c.readings) AS r"
    )
    op.drop_index("ix_readings_patient_time", table_name="readings")
    op.drop_index("ix_readings_device_time", table_name="readings")
    op.drop_table("readings")
    op.execute(READINGS_VIEW)


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute(f"CREATE TABLE readings_moving AS SELECT {COLUMNS} FROM readings")  # noqa: S608 - fixed names
    op.execute("DROP VIEW readings")
    op.create_table(
        "readings",
        sa.Column("device_id", sa.String(length=40), nullable=False),
        sa.Column("reading_id", sa.String(length=128), nullable=False),
        sa.Column("ts", _datetime(), nullable=False),
        sa.Column("metric", sa.String(length=32), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("components", sa.JSON(), nullable=True),
        sa.Column("unit", sa.String(length=32), nullable=False),
        sa.Column("patient_ref", sa.String(length=80), nullable=True),
        sa.Column("received", _datetime(), nullable=False),
        sa.PrimaryKeyConstraint("device_id", "reading_id", name=op.f("pk_readings")),
    )
    op.create_index("ix_readings_device_time", "readings", ["device_id", "ts"])
    op.create_index("ix_readings_patient_time", "readings", ["patient_ref", "ts"])
    op.execute(f"INSERT INTO readings ({COLUMNS}) SELECT {COLUMNS} FROM readings_moving")  # noqa: S608 - fixed names
    op.execute("DROP TABLE readings_moving")
    op.drop_table("reading_chunk_sequence")
    op.drop_table("reading_chunk_keys")
    op.drop_index("ix_reading_chunks_patient_time", table_name="reading_chunks")
    op.drop_index("ix_reading_chunks_device_time", table_name="reading_chunks")
    op.drop_table("reading_chunks")
