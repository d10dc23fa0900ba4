from pathlib import Path

import pytest
from pydantic import ValidationError

from medmesh.phi.config import PhiSettings


def test_write_admission_is_sixteen_writes_on_every_database_unless_set(tmp_path: Path) -> None:
    sqlite = PhiSettings(var_dir=tmp_path)
    postgres = PhiSettings(database_url="postgresql+asyncpg://phi@db.internal/phi")
    chosen = PhiSettings(
        database_url="postgresql+asyncpg://phi@db.internal/phi", concurrent_writes=3
    )

    # Writes in flight share commits (SQLite's group commit, the audit trail's batches).
    assert (sqlite.concurrent_writes, sqlite.effective_writes_per_client) == (16, 12)
    assert (postgres.concurrent_writes, postgres.effective_writes_per_client) == (16, 12)
    assert (chosen.concurrent_writes, chosen.effective_writes_per_client) == (3, 2)
    with pytest.raises(ValidationError, match="concurrent_writes"):
        PhiSettings(var_dir=tmp_path, concurrent_writes=0)
