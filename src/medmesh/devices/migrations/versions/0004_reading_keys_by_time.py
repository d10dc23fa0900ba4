"""reading_keys indexed by time (PostgreSQL)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 18:30:00

The retention of readings (``READING_RETENTION_DAYS``) deletes the keys of the readings it
removes by their time: ``ix_reading_keys_ts`` makes that a range scan of ``reading_keys``. SQLite
has no ``reading_keys``: nothing changes there.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.create_index("ix_reading_keys_ts", "reading_keys", ["ts"], unique=False)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_reading_keys_ts", table_name="reading_keys")
