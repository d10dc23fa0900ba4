"""Another process that holds a SQLite file's write lock, for tests of writers that wait for it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

_HOLDER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
if sys.argv[3]:
    conn.execute(sys.argv[3])
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("COMMIT")
"""


def hold_write_lock(path: Path, seconds: float, statement: str = "") -> subprocess.Popen[str]:
    """Start a process that takes ``path``'s write lock (running ``statement`` in its
    transaction), holds it for ``seconds`` and commits; returns once the lock is held."""
    process = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(path), str(seconds), statement],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "locked"
    return process
