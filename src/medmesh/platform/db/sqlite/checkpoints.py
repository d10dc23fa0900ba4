"""WAL checkpoints off the event loop, at most every ``CHECKPOINT_SECONDS`` per file."""

from __future__ import annotations

import asyncio
import sqlite3
import time
import weakref
from typing import Any

from medmesh.platform.db.sqlite.files import BUSY_MS
from medmesh.platform.db.sqlite.forking import off_loop
from medmesh.platform.db.sqlite.writer import SharedTurn, in_turn, write_queue
from medmesh.platform.logging import get_logger

_log = get_logger("medmesh.platform.db.sqlite")

#: Least time between two checkpoints of a file (see :func:`checkpoint_soon`): a page that many
#: commits wrote meanwhile is copied once (see docs/decisions/0004-wal-checkpoints-off-the-loop.md).
CHECKPOINT_SECONDS = 0.5


class _Checkpoints:
    """The checkpointing of one loop's files: when each last started, which one runs."""

    def __init__(self) -> None:
        self.started: dict[str, float] = {}
        self.running: dict[str, asyncio.Task[None]] = {}


_checkpointing: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Checkpoints] = (
    weakref.WeakKeyDictionary()
)


def checkpoint_soon(path: str, *, others: bool = False, turn: SharedTurn | None = None) -> None:
    """After a commit to ``path`` (``others``: by another process): checkpoint its WAL, at most
    every ``CHECKPOINT_SECONDS`` and one at a time.

    SQLite's own automatic checkpoint (off on this driver's connections) runs inside the commit
    that crosses 1,000 WAL pages: it copies them into the database file and syncs twice, on the
    loop's thread, stalling it under writes (see docs/decisions/0004-wal-checkpoints-off-the-loop.md).
    Here the bulk of the copy runs on a worker thread (a
    ``PASSIVE`` checkpoint blocks neither readers nor writers), then a last pass on the loop,
    between two of this process's write transactions, copies what was committed meanwhile: the
    WAL is then wholly copied, so the next writer restarts it from its beginning (a checkpoint
    that never catches up with steady writes would let it grow without end).

    Another process's writers (phi's import workers) do not wait for this process's writer
    queue, and one of them always began before such a last pass was done. After their commits
    (``others``, :meth:`Database.others_committed`) the last pass runs on the thread instead,
    takes SQLite's write lock until no reader is in the WAL, so the next commit restarts it
    (:func:`restart`), in ``turn`` when those writers take turns with one.
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # not on a loop: nothing of the services
        return
    state = _checkpointing.get(loop)
    if state is None:
        state = _checkpointing[loop] = _Checkpoints()
    now = time.monotonic()
    if path in state.running or now - state.started.get(path, float("-inf")) < CHECKPOINT_SECONDS:
        return
    state.started[path] = now
    task = state.running[path] = loop.create_task(_checkpoint(path, others, turn))

    def done(_: Any) -> None:
        state.running.pop(path, None)
        if not task.cancelled() and task.exception() is not None:
            # Committed data is safe in the WAL, which grows until a later checkpoint succeeds.
            _log.warning("sqlite_checkpoint_failed", error=type(task.exception()).__name__)

    task.add_done_callback(done)


#: The last pass runs once a pass on the thread found fewer new WAL frames.
LAST_PASS_FRAMES = 64
#: How long the last pass tries to restart the WAL, and how often.
LAST_PASS_WAIT_SECONDS = 0.25
RESTART_POLL_SECONDS = 0.001


async def checkpoints_settled(path: str) -> None:
    """Wait until no checkpoint of ``path`` runs on this loop (call it before the engine's last
    connection closes: SQLite copies the whole WAL into the database file when its last
    connection closes, which it cannot while a checkpoint holds a connection of its own)."""
    state = _checkpointing.get(asyncio.get_running_loop())
    task = state.running.get(path) if state is not None else None
    if task is not None:
        await asyncio.gather(task, return_exceptions=True)


async def _checkpoint(path: str, others: bool, turn: SharedTurn | None) -> None:
    loop = asyncio.get_running_loop()
    previous = 0
    for _ in range(4):  # each pass copies what was committed during the one before
        frames = await loop.run_in_executor(None, _checkpoint_off_loop, path)
        if frames - previous < LAST_PASS_FRAMES:
            break
        previous = frames
    async with write_queue(path):  # this process's writers wait their turn meanwhile
        if others:
            await loop.run_in_executor(None, _restart_off_loop, path, turn)
        else:
            checkpoint(path)


def _restart_off_loop(path: str, turn: SharedTurn | None) -> None:
    with off_loop():
        restart(path, turn)


def _checkpoint_off_loop(path: str) -> int:
    with off_loop():
        return checkpoint(path)


def restart(path: str, turn: SharedTurn | None = None) -> bool:
    """Copy what is left of the WAL of ``path`` into the database file, holding SQLite's write
    lock until no reader is in the WAL (``PRAGMA wal_checkpoint(RESTART)``), so that the next
    commit starts the WAL again from its beginning; whether it did (blocking). The WAL file is
    kept: that commit overwrites it, which costs the kernel about half of writing past its end
    (``PRAGMA journal_size_limit`` caps what is kept). It needs that lock and no reader in the
    WAL: it tries every :data:`RESTART_POLL_SECONDS` for up to :data:`LAST_PASS_WAIT_SECONDS`
    (SQLite's busy handler sleeps longer and longer, and other processes' writers that wait for
    the lock the same way would always take it first). With the writers' ``turn`` it first
    waits for that, up to the same time: each try that finds the lock taken copies what it can,
    as a passive checkpoint does, and syncs the files."""
    deadline = time.monotonic() + LAST_PASS_WAIT_SECONDS
    with in_turn(turn, LAST_PASS_WAIT_SECONDS):
        conn = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            while True:
                busy, _frames, _copied = conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
                if not busy:
                    return True
                if time.monotonic() + RESTART_POLL_SECONDS > deadline:
                    return False
                time.sleep(RESTART_POLL_SECONDS)
        finally:
            conn.close()


def checkpoint(path: str) -> int:
    """Copy the WAL of ``path`` into the database file, as far as readers allow (blocking);
    returns the number of frames the WAL held."""
    conn = sqlite3.connect(path, timeout=BUSY_MS / 1000, isolation_level=None)
    try:
        _busy, frames, _copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(frames)
    finally:
        conn.close()
