"""Read-only connections in autocommit mode, for one-row reads outside any session."""

from __future__ import annotations

import sqlite3

from medmesh.platform.db.sqlite.files import BUSY_MS


def open_reader(database: str, *, cache_kib: int, mmap_bytes: int) -> sqlite3.Connection:
    """A connection that only reads (``query_only``), in autocommit mode: each statement is a read
    transaction of its own and sees the last commit; in WAL mode it never waits for a writer."""
    reader = sqlite3.connect(
        database, timeout=BUSY_MS / 1000, isolation_level=None, check_same_thread=False
    )
    for pragma in ("query_only=1", f"cache_size=-{cache_kib}", f"mmap_size={mmap_bytes}"):
        reader.execute(f"PRAGMA {pragma}")
    return reader
