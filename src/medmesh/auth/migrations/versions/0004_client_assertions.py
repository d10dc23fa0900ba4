"""clients authenticate with signed assertions (private_key_jwt); accepted assertion jtis

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 04:00:00

A client gets ``token_endpoint_auth_method`` (existing clients keep their secret:
``client_secret_basic``) and its public keys, inline (``jwks``) or by URL (``jwks_uri``).
``client_assertion_jtis`` holds each accepted assertion's ``jti`` until it expires, so that
every replica refuses a replay.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from medmesh.platform.db import UTCDateTime

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "token_endpoint_auth_method",
                sa.String(length=32),
                nullable=False,
                server_default="client_secret_basic",
            )
        )
        batch_op.add_column(sa.Column("jwks", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("jwks_uri", sa.String(length=2048), nullable=True))
    op.create_table(
        "client_assertion_jtis",
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("jti", sa.String(length=255), nullable=False),
        sa.Column("expires_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("client_id", "jti", name=op.f("pk_client_assertion_jtis")),
    )
    op.create_index(
        "ix_client_assertion_jtis_expires", "client_assertion_jtis", ["expires_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_client_assertion_jtis_expires", table_name="client_assertion_jtis")
    op.drop_table("client_assertion_jtis")
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.drop_column("jwks_uri")
        batch_op.drop_column("jwks")
        batch_op.drop_column("token_endpoint_auth_method")
