"""revocations: one table of every revocation (jti, sid, sub, client), replacing revoked_access_tokens

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03 21:55:00.000000

A row says "tokens matching ``kind``/``value`` issued at or before ``revoked_at`` are refused"
and lives until ``keep_until`` (revoked_at + the longest access-token lifetime): jti (one access
token), sid (a refresh family and the access tokens issued from it), sub (a user disabled or
deleted), client (a client disabled or deleted). The revoked access tokens kept so far move over
as ``jti`` rows.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import medmesh.platform.db

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "revocations",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("value", sa.String(length=128), nullable=False),
        sa.Column("revoked_at", medmesh.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("keep_until", medmesh.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_revocations")),
    )
    with op.batch_alter_table("revocations", schema=None) as batch_op:
        batch_op.create_index("ix_revocations_revoked_at", ["revoked_at"], unique=False)
        batch_op.create_index("ix_revocations_keep_until", ["keep_until"], unique=False)
        batch_op.create_index("ix_revocations_kind_value", ["kind", "value"], unique=False)
    op.execute(
        "INSERT INTO revocations (kind, value, revoked_at, keep_until) "
        "SELECT 'jti', jti, revoked_at, expires_at FROM revoked_access_tokens"
    )
    with op.batch_alter_table("revoked_access_tokens", schema=None) as batch_op:
        batch_op.drop_index("ix_revoked_access_tokens_revoked_at")
    op.drop_table("revoked_access_tokens")


def downgrade() -> None:
    op.create_table(
        "revoked_access_tokens",
        sa.Column("jti", sa.String(length=64), nullable=False),
        sa.Column("expires_at", medmesh.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", medmesh.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("jti", name=op.f("pk_revoked_access_tokens")),
    )
    with op.batch_alter_table("revoked_access_tokens", schema=None) as batch_op:
        batch_op.create_index("ix_revoked_access_tokens_revoked_at", ["revoked_at"], unique=False)
    # Only access-token (jti) revocations have a table to go back to.
    op.execute(
        "INSERT INTO revoked_access_tokens (jti, expires_at, revoked_at) "
        "SELECT value, MAX(keep_until), MIN(revoked_at) FROM revocations "
        "WHERE kind = 'jti' AND LENGTH(value) <= 64 GROUP BY value"
    )
    with op.batch_alter_table("revocations", schema=None) as batch_op:
        batch_op.drop_index("ix_revocations_kind_value")
        batch_op.drop_index("ix_revocations_keep_until")
        batch_op.drop_index("ix_revocations_revoked_at")
    op.drop_table("revocations")
