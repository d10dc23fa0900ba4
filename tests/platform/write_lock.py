"""SQLite files under test: another process that holds a file's write lock (for tests of writers
that wait for it without holding the event loop), and the sizes of a file and its WAL."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

from medmesh.platform.db.sqlite import SharedTurn

_HOLDER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
if sys.argv[2]:
    conn.execute(sys.argv[2])
print("locked", flush=True)
sys.stdin.readline()
conn.execute("COMMIT")
print("committed", flush=True)
"""


def _start_holder(path: Path, statement: str) -> subprocess.Popen[str]:
    """Start the holder and return once it holds the lock (before the loop's work begins)."""
    process = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(path), statement],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "locked"
    return process


@dataclass
class LockHolder:
    """Another process holding a file's write lock until :meth:`release`."""

    process: subprocess.Popen[str]

    async def served_ticks(self, count: int) -> None:
        """Return after the loop has served ``count`` 10 ms ticks (it never does while a
        blocking wait holds it)."""
        for _ in range(count):
            await asyncio.sleep(0.01)

    async def release(self) -> None:
        """Commit the holder's transaction and wait until it has."""
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write("commit\n")
        self.process.stdin.flush()
        line = await asyncio.to_thread(self.process.stdout.readline)
        assert line.strip() == "committed"


@contextlib.asynccontextmanager
async def lock_held_elsewhere(path: Path, statement: str = "") -> AsyncIterator[LockHolder]:
    """While the block runs, another process holds ``path``'s write lock (taken before the block
    starts, with ``statement`` run in its transaction) until the block calls ``release()``. On
    exit the process is ended (killed without committing when the block did not release it)."""
    holder = LockHolder(_start_holder(path, statement))
    try:
        yield holder
    finally:
        holder.process.kill()
        holder.process.wait(5)
        for stream in (holder.process.stdin, holder.process.stdout):
            if stream is not None:
                stream.close()


def file_and_wal_bytes(path: Path) -> tuple[int, int]:
    """The sizes of the database file and of its WAL."""
    return path.stat().st_size, Path(f"{path}-wal").stat().st_size


def in_turn_held_here(turn: SharedTurn, work: Callable[[], str]) -> list[str]:
    """Run ``work`` on a thread while ``turn`` is held here for a moment, then given back:
    what happened, in order (``work``'s answer once it ends). A writer that waits for the turn
    answers after ``"turn given back"``."""
    events: list[str] = []
    turn.acquire()
    thread = threading.Thread(target=lambda: events.append(work()))
    thread.start()
    thread.join(timeout=0.5)  # a writer that waits for the turn is still waiting
    events.append("turn given back")
    turn.release()
    thread.join()
    return events
