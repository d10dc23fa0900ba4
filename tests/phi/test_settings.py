from pathlib import Path

from medmesh.phi.config import PhiSettings


def test_write_admission_follows_the_database_unless_set(tmp_path: Path) -> None:
    sqlite = PhiSettings(var_dir=tmp_path)
    postgres = PhiSettings(database_url="postgresql+asyncpg://phi@db.internal/phi")
    chosen = PhiSettings(
        database_url="postgresql+asyncpg://phi@db.internal/phi", concurrent_writes=3
    )

    # SQLite has one writer at a time: a few in flight; PostgreSQL writers run side by side.
    assert sqlite.effective_concurrent_writes == 4
    assert postgres.effective_concurrent_writes == 16
    assert chosen.effective_concurrent_writes == 3
