"""What a preparation worker process runs (:class:`~medmesh.phi.bulk_import.pool.PreparationPool`
submits these functions): preparing import chunks and transactions' creates
(:mod:`medmesh.phi.bulk_import.preparation`) and, on SQLite, writing them
(:mod:`medmesh.phi.bulk_import.writing`).

A worker is forked from the service at first use (the keys and the compiled validator are
already there). It lets go of the service's sockets, takes back default signal handling and,
on Linux, asks to be killed when the process that started it dies. Decision 0048.
"""

from __future__ import annotations

import os
import signal
import stat
from datetime import datetime
from typing import NamedTuple

from medmesh.phi.bulk_import.preparation import Item, Line, LinePreparer, Prepared, Rejected
from medmesh.phi.bulk_import.writing import (
    BundlePlan,
    BundleWrite,
    ChunkWriter,
    Turn,
    Turns,
    WritePlan,
    Written,
    WrittenBundle,
)
from medmesh.phi.protection import PhiProtection
from medmesh.platform.db import sqlite
from medmesh.platform.logging import get_logger

_log = get_logger("medmesh.phi.import")


class BundleWork(NamedTuple):
    """A transaction's creates for a worker to prepare and write."""

    items: list[Item]
    base_urls: tuple[str, ...]
    now: datetime
    plan: BundlePlan


#: The worker process's preparer (set by :func:`start_worker`).
_preparer: LinePreparer | None = None
#: The order of the chunks the workers write, the workers' turn to write, and this worker's
#: writers by database.
_turns: Turns | None = None
_write_turn: sqlite.SharedTurn | None = None
_writers: dict[str, ChunkWriter] = {}


def start_worker(
    protection: PhiProtection,
    max_depth: int,
    turns: Turns | None = None,
    write_turn: sqlite.SharedTurn | None = None,
) -> None:
    global _preparer, _turns, _write_turn
    _turns, _write_turn = turns, write_turn
    _die_with_parent()
    _close_sockets()
    # The service's signal handling is not the worker's: a SIGTERM stops it, and a Ctrl-C
    # (it reaches the whole process group) is left to the parent, which stops the pool.
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _preparer = LinePreparer(protection, max_depth)


def _close_sockets() -> None:
    """Let go of the worker's copies of the service's sockets (its listening socket, its
    clients' connections, its database connections): a copy left open would keep a connection
    the service closes from closing, and its port bound. The pool talks through pipes.

    Each is replaced by ``/dev/null`` rather than closed, so that the number stays taken: an
    object of the service's that closes its socket one day closes that, not a later file."""
    if not os.path.isdir("/proc/self/fd"):
        return
    null = os.open(os.devnull, os.O_RDWR)
    try:
        for name in os.listdir("/proc/self/fd"):
            fd = int(name)
            try:
                if fd != null and stat.S_ISSOCK(os.fstat(fd).st_mode):
                    os.dup2(null, fd)
            except OSError:
                continue  # the listing's own descriptor, closed by now
    finally:
        os.close(null)


def _die_with_parent() -> None:
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def prepare_chunk(
    chunk: list[Line], expected_type: str | None, base_urls: tuple[str, ...], now: datetime
) -> list[Prepared | Rejected | None]:
    assert _preparer is not None
    return _preparer.prepare(chunk, expected_type, base_urls, now)


def prepare_and_write_chunk(
    turn: Turn,
    chunk: list[Line],
    expected_type: str | None,
    base_urls: tuple[str, ...],
    now: datetime,
    plan: WritePlan,
) -> Written | list[Prepared | Rejected | None] | None:
    """A chunk prepared, then written in its ``turn``: what was written, or the prepared
    chunk for the service to store (its turn stays with it), or None when its turn was given
    up (nothing written)."""
    assert _preparer is not None
    assert _turns is not None
    prepared = _preparer.prepare(chunk, expected_type, base_urls, now)
    if not _turns.wait(turn):
        return None
    try:
        written = _writer(plan).write(plan, prepared, now, chunk[-1][0])
    except Exception as exc:  # the service stores the chunk its own way, and sees the error
        _log.warning("import_chunk_not_written", error=type(exc).__name__)
        written = None
    if written is None:
        return prepared
    _turns.done(turn.number)
    return written


def prepare_and_write_bundles(
    bundles: list[BundleWork],
) -> list[WrittenBundle | list[Prepared | Rejected]]:
    """Transactions' creates prepared, then written together, each with its record: for each,
    what was written, or its prepared creates for the service to store (nothing of it
    written)."""
    assert _preparer is not None
    prepared = [
        _preparer.prepare_resources(work.items, work.base_urls, work.now) for work in bundles
    ]
    try:
        written = _writer(bundles[0].plan).write_bundles(
            [
                BundleWrite(work.plan, done, work.now)
                for work, done in zip(bundles, prepared, strict=True)
            ]
        )
    except Exception as exc:  # the service stores the creates its own way, and sees the error
        _log.warning("transaction_not_written", error=type(exc).__name__)
        written = [None] * len(bundles)
    return [done if one is None else one for done, one in zip(prepared, written, strict=True)]


def _writer(plan: WritePlan | BundlePlan) -> ChunkWriter:
    """This worker's writer to the database of ``plan``."""
    writer = _writers.get(plan.database)
    if writer is None:
        writer = _writers[plan.database] = ChunkWriter(plan, _write_turn)
    return writer


def prepare_creates(
    items: list[Item], base_urls: tuple[str, ...], now: datetime
) -> list[Prepared | Rejected]:
    assert _preparer is not None
    return _preparer.prepare_resources(items, base_urls, now)
