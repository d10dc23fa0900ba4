"""search index rows and versions keyed by the resource id first

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 07:00:00

The primary keys of the search index tables and of ``resource_versions`` started with the
resource type, so a Bundle's rows of a dozen types landed on a dozen pages of each table. Ids
are time-ordered: keyed by the id first, the rows of a write share the right edge of each
table (see docs/decisions/0059-phi-rows-keyed-by-resource-id-first.md). Every query of these
keys gives both the type and the id. On SQLite the search tables stay ``WITHOUT ROWID``.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Each table's primary key, type first (before) and id first (after).
KEYS = {
    "search_strings": ("resource_type", "resource_id", "param", "token"),
    "search_tokens": ("resource_type", "resource_id", "param", "system", "code"),
    "search_dates": ("resource_type", "resource_id", "param", "low", "high"),
    "search_references": ("resource_type", "resource_id", "param", "target_type", "target_id"),
    "resource_versions": ("resource_type", "id", "version"),
}


def _key(id_first: bool) -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table, key in KEYS.items():
        columns = [key[1], key[0], *key[2:]] if id_first else list(key)
        options = {"sqlite_with_rowid": False} if sqlite and table.startswith("search_") else {}
        with op.batch_alter_table(table, table_kwargs=options) as batch:
            batch.drop_constraint(f"pk_{table}", type_="primary")
            batch.create_primary_key(f"pk_{table}", columns)


def upgrade() -> None:
    _key(id_first=True)


def downgrade() -> None:
    _key(id_first=False)
