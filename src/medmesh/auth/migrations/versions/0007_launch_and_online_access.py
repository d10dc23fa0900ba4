"""EHR launch contexts; the sign-in session of online_access refresh tokens

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 07:40:00

An EHR mints a ``launch`` value with patient and encounter context for one app; the code of
that launch carries the context. An ``online_access`` refresh token names the sign-in session
it was granted in and works only while that session lives.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import medmesh.platform.db

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = medmesh.platform.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "launch_contexts",
        sa.Column("value_hash", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("patient", sa.String(length=64), nullable=True),
        sa.Column("encounter", sa.String(length=64), nullable=True),
        sa.Column("need_patient_banner", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("expires_at", _TIME, nullable=False),
        sa.Column("used_at", _TIME, nullable=True),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.client_id"],
            name=op.f("fk_launch_contexts_client_id_clients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("value_hash", name=op.f("pk_launch_contexts")),
    )
    op.create_index("ix_launch_contexts_expires", "launch_contexts", ["expires_at"])
    with op.batch_alter_table("authorization_codes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("encounter", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("need_patient_banner", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("browser_session", sa.String(length=64), nullable=True))
    with op.batch_alter_table("refresh_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("browser_session", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("refresh_tokens", schema=None) as batch_op:
        batch_op.drop_column("browser_session")
    with op.batch_alter_table("authorization_codes", schema=None) as batch_op:
        batch_op.drop_column("browser_session")
        batch_op.drop_column("need_patient_banner")
        batch_op.drop_column("encounter")
    op.drop_index("ix_launch_contexts_expires", table_name="launch_contexts")
    op.drop_table("launch_contexts")
