"""A fork never happens while another thread is inside SQLite (platform.db.sqlite.forking):
a child forked then would inherit SQLite's mutexes locked and hang at its first SQLite call."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path

from medmesh.platform.db.sqlite import checkpoint, off_loop
from medmesh.platform.db.sqlite.checkpoints import _checkpoint_off_loop


def _wait_for_child(pid: int, seconds: float = 120.0) -> int:
    """The child's exit status; -1 when it is still running after ``seconds`` (hung: killed)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    return -1


def test_a_fork_waits_until_no_other_thread_is_inside_sqlite() -> None:
    events: list[str] = []
    inside, leave = threading.Event(), threading.Event()

    def sqlite_work() -> None:
        with off_loop():
            inside.set()
            leave.wait(60)
            events.append("the thread's SQLite work ended")

    def fork() -> None:
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        events.append("forked")
        assert _wait_for_child(pid) == 0

    worker = threading.Thread(target=sqlite_work)
    worker.start()
    assert inside.wait(60)
    forker = threading.Thread(target=fork)
    forker.start()
    forker.join(0.5)  # room to fork at once, if nothing held it back
    leave.set()
    worker.join(60)
    forker.join(60)

    assert events == ["the thread's SQLite work ended", "forked"]


def test_children_forked_while_checkpoints_run_on_a_thread_use_sqlite(tmp_path: Path) -> None:
    database = str(tmp_path / "busy.db")
    with sqlite3.connect(database, isolation_level=None) as setup:
        setup.execute("PRAGMA journal_mode=WAL")
        setup.execute("CREATE TABLE t (x)")
        setup.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(1000)])
    stop = threading.Event()

    def checkpoints() -> None:
        while not stop.is_set():
            _checkpoint_off_loop(database)

    busy = threading.Thread(target=checkpoints)
    busy.start()
    statuses = []
    try:
        for _ in range(30):
            pid = os.fork()
            if pid == 0:
                try:  # what coverage does when a measured worker ends, and hung on
                    with sqlite3.connect(":memory:") as child:
                        child.execute("SELECT 1").fetchone()
                finally:
                    os._exit(0)
            statuses.append(_wait_for_child(pid))
    finally:
        stop.set()
        busy.join(60)

    assert statuses == [0] * 30
    assert checkpoint(database) >= 0
