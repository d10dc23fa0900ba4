"""refresh tokens keep the patient a launch put in context

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 04:20:00

A practitioner's launch picks a patient (no patient is bound to the user); the refreshed access
tokens of that session carry the same patient.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("refresh_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("patient", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("refresh_tokens", schema=None) as batch_op:
        batch_op.drop_column("patient")
