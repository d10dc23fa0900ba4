"""audit records carry the id of the key that linked them

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03 22:00:00

A record's link becomes an HMAC-SHA256 under a key the database does not hold
(``MEDMESH_SYNTHETIC_AUDIT_KEYS``); ``key_id`` names that key so a rotated trail still verifies.
Records written before (``key_id`` NULL) keep their plain SHA-256 links.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.add_column(sa.Column("key_id", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_column("key_id")
