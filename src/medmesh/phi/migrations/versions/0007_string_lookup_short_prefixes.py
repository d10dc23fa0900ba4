"""search_strings: only short prefixes in the lookup index

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 00:20:00

A string value's tokens (its whole value and each prefix) all stay rows of ``search_strings``; the
lookup index keeps only the rows marked ``indexed`` (prefixes of at most three characters), and a
search finds a longer prefix or a whole value through them (see
docs/decisions/0047-phi-string-lookup-short-prefixes.md). Rows stored before keep ``indexed`` true:
a token's length cannot be read back from it, and a row in the index is never wrong, only larger.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ["resource_type", "param", "token", "resource_id"]
#: The condition's column too: without it SQLite's planner would not take the index as covering.
INDEXED = [*COLUMNS, "indexed"]


def upgrade() -> None:
    op.add_column(
        "search_strings",
        sa.Column("indexed", sa.Boolean(), nullable=False, server_default=sa.true()),
    )
    op.drop_index("ix_search_strings_lookup", table_name="search_strings")
    op.create_index(
        "ix_search_strings_lookup",
        "search_strings",
        INDEXED,
        sqlite_where=sa.text("indexed = 1"),
        postgresql_where=sa.text("indexed"),
    )


def downgrade() -> None:
    op.drop_index("ix_search_strings_lookup", table_name="search_strings")
    op.create_index("ix_search_strings_lookup", "search_strings", COLUMNS)
    op.drop_column("search_strings", "indexed")
