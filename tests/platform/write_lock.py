"""SQLite files under test: another process that holds a file's write lock (for tests of writers
that wait for it without holding the event loop), and the sizes of a file and its WAL."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
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


def _start_holder(path: Path, seconds: float, statement: str) -> subprocess.Popen[str]:
    """Start the holder and return once it holds the lock (before the loop's work begins)."""
    process = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(path), str(seconds), statement],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "locked"
    return process


@dataclass
class LoopTicks:
    """How many 10 ms ticks the event loop served while the lock was held elsewhere."""

    count: int = 0


@contextlib.asynccontextmanager
async def lock_held_elsewhere(
    path: Path, seconds: float, statement: str = ""
) -> AsyncIterator[LoopTicks]:
    """While the block runs, another process holds ``path``'s write lock (taken before the block
    starts, with ``statement`` run in its transaction, committed after ``seconds``) and a task
    counts the loop's ticks. On exit the process is ended (it has committed already when a writer
    of the block got the lock; otherwise it is killed without committing)."""
    process = _start_holder(path, seconds, statement)
    ticks = LoopTicks()

    async def tick() -> None:
        while True:
            await asyncio.sleep(0.01)
            ticks.count += 1

    ticker = asyncio.create_task(tick())
    try:
        yield ticks
    finally:
        ticker.cancel()
        process.kill()
        process.wait(5)
        if process.stdout is not None:
            process.stdout.close()


def file_and_wal_bytes(path: Path) -> tuple[int, int]:
    """The sizes of the database file and of its WAL."""
    return path.stat().st_size, Path(f"{path}-wal").stat().st_size
