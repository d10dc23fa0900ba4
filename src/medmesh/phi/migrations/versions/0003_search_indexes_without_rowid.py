"""search index tables without rowid (SQLite)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 17:00:00

On SQLite a table with a composite primary key is a rowid B-tree plus an index for the key: each
index row was written three times (table, key, lookup index). ``WITHOUT ROWID`` makes the key the
table itself: two B-trees a row (see docs/decisions/0015-search-index-rows-once-without-rowid.md).
PostgreSQL has no rowid tables: nothing changes there.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("search_strings", "search_tokens", "search_dates", "search_references")


def _rebuild(with_rowid: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:
        # Batch mode copies the table into a new one created with these options, then its indexes.
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_with_rowid": with_rowid}
        ):
            pass


def upgrade() -> None:
    _rebuild(with_rowid=False)


def downgrade() -> None:
    _rebuild(with_rowid=True)
