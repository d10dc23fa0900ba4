"""resources: the body is read from the current version's row

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 10:00:00

Each version's body is stored once, in ``resource_versions``; the current row no longer holds a
copy (see docs/decisions/0051-phi-bodies-stored-once.md). Every write stored the two copies
together and key rotation re-wrapped both, so the copy dropped here is the version's own body.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("resources") as batch:
        batch.drop_column("body")


def downgrade() -> None:
    with op.batch_alter_table("resources") as batch:
        batch.add_column(sa.Column("body", sa.LargeBinary(), nullable=True))
    op.execute(
        "UPDATE resources SET body = (SELECT v.body FROM resource_versions AS v"
        " WHERE v.resource_type = resources.resource_type AND v.id = resources.id"
        " AND v.version = resources.version)"
    )
