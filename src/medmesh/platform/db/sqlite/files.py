"""Opening a SQLite file: every connection's settings, the bounded busy handler, a file's identity."""

from __future__ import annotations

import os
import sqlite3
import struct
import threading
from pathlib import Path
from typing import Any

#: SQLite's own busy handler (ms): bounded, because it runs on the event loop.
BUSY_MS = 20
#: Page cache per connection (SQLite's default is 2 MiB): index B-trees of a large store (blind
#: index tokens are random, so inserts touch pages all over them) stay in memory.
CACHE_KIB = 16 * 1024
#: Reads go through a shared memory map instead of a read() per page.
MMAP_BYTES = 256 * 1024 * 1024
#: What a restarted WAL keeps of its file: a restart overwrites the file from its beginning
#: (cheaper than writing past its end), and a writer's first commit after it cuts the file
#: to this size (the WAL of a checkpoint's 10,000 pages fits).
WAL_KEEP_BYTES = 64 * 1024 * 1024
#: Every connection's settings, whatever the driver (WAL is a setting of the file).
PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    f"PRAGMA cache_size=-{CACHE_KIB}",
    f"PRAGMA mmap_size={MMAP_BYTES}",
    f"PRAGMA journal_size_limit={WAL_KEEP_BYTES}",
)


def file_key(database: str) -> str:
    """The name under which this driver knows the database file ``database``."""
    return str(Path(database).resolve())


def file_identity(database: str, uri: bool) -> str | None:
    """The identity of a database file, or None for private in-memory databases."""
    if database in ("", ":memory:") or (uri and "mode=memory" in database):
        return None
    if uri:
        return database
    return file_key(database)


def connect(database: str, kw: dict[str, Any], *, checkpoints: bool) -> sqlite3.Connection:
    connection: sqlite3.Connection = sqlite3.connect(database, timeout=BUSY_MS / 1000, **kw)
    for pragma in PRAGMAS:
        connection.execute(pragma)
    if checkpoints:
        # Commits never checkpoint on the loop: see checkpoint_soon.
        connection.execute("PRAGMA wal_autocheckpoint=0")
    return connection


#: Where the WAL-index (the ``-shm`` file) keeps the number of frames in the WAL (``mxFrame``)
#: and how many of them are copied into the database (``nBackfill``), both 32-bit unsigned in
#: the machine's byte order (https://sqlite.org/walformat.html#the_wal_index_file_format).
_MX_FRAME, _N_BACKFILL, _WAL_INDEX_HEADER = 16, 96, 100


def frames_to_copy(path: str) -> int:
    """How many frames the WAL of database file ``path`` holds that a checkpoint has not copied
    yet, read from its WAL-index; 0 without one. The WAL file itself keeps its size when it
    restarts, so its size does not tell."""
    with _index_files_lock:
        index = _wal_index(f"{path}-shm")
        header = b"" if index is None else os.pread(index, _WAL_INDEX_HEADER, 0)
    if len(header) < _WAL_INDEX_HEADER:
        return 0
    (frames,) = struct.unpack_from("=I", header, _MX_FRAME)
    (copied,) = struct.unpack_from("=I", header, _N_BACKFILL)
    return max(int(frames) - int(copied), 0)


#: The WAL-index files this process reads, by name: each descriptor stays open while the name
#: still leads to its file. Closing any descriptor of a file drops every POSIX lock the process
#: holds on it, SQLite's included, and another process would then take the index for unused
#: and reset it (https://sqlite.org/howtocorrupt.html, 2.2.1). Decision 0058.
_index_files: dict[str, int] = {}
_index_files_lock = threading.Lock()


def _after_fork() -> None:
    global _index_files_lock
    _index_files_lock = threading.Lock()  # a thread of the parent's may have held it


os.register_at_fork(after_in_child=_after_fork)


def _wal_index(name: str) -> int | None:
    """An open descriptor of the WAL-index file ``name``, None while there is none."""
    try:
        found = os.stat(name)
    except FileNotFoundError:
        found = None
    held = _index_files.get(name)
    if held is not None:
        kept = os.fstat(held)
        if found is not None and (kept.st_dev, kept.st_ino) == (found.st_dev, found.st_ino):
            return held
        # The name leads to another file now, or none: no process can open the one held any
        # more, so no lock on it is left for another to take.
        del _index_files[name]
        os.close(held)
    if found is None:
        return None
    _index_files[name] = os.open(name, os.O_RDONLY | os.O_CLOEXEC)
    return _index_files[name]
