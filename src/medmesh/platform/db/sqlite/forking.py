"""SQLite work on a thread other than the event loop's, kept apart from ``os.fork``.

A process forked while another of its threads is inside SQLite inherits SQLite's global
mutexes locked (its allocator's, its file-system layer's): the child's first SQLite call then
waits forever. phi forks its preparation workers from a serving process whose WAL checkpoints
(and, off the loop, audit appends) run on other threads. Those run inside :func:`off_loop`,
and a fork waits until none is inside it (``os.register_at_fork``), so a child never starts
with a mutex of SQLite's held; its copy of the guard is released in the child.

The event loop's own SQLite work needs no guard: the loop's thread is the one that forks.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_guard = threading.Lock()


@contextmanager
def off_loop() -> Iterator[None]:
    """Hold off forks while the block runs SQLite on this (non-loop) thread."""
    with _guard:
        yield


def _release() -> None:
    _guard.release()


os.register_at_fork(before=_guard.acquire, after_in_parent=_release, after_in_child=_release)
