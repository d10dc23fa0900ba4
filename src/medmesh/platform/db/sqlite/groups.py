"""Group commit of direct write transactions: those of one file that meet join one SQLite
transaction, each in a savepoint of its own (but the first), and are committed together.

Each SQLite commit writes every page its transaction dirtied to the WAL (two ``pwrite`` calls a
page) and the next checkpoint copies them again; the transactions of concurrent requests dirty
the same pages (the right edges of tables and indexes with time-ordered keys). Committed
together they write those pages once (figures in
docs/decisions/0039-payments-planned-writes-and-group-commit.md).

How a group runs, on one event loop, for one file:

- A transaction that finds no group open joins the file's writer queue (the driver's lock, so
  it queues with session writers), opens ``BEGIN IMMEDIATE`` on the writer connection and is
  the group's first member. One that finds a group open waits to be handed it.
- A later member runs in a ``SAVEPOINT``, so that its rollback (an error, a failed check)
  undoes its own statements only; the first member's rollback is the transaction's (nothing
  else is in it yet). A member's commit releases its statements into the group and hands the
  open transaction to the next waiting member; the last one lets the loop turn
  (:data:`LINGER_TURNS`) so that writers becoming ready can join, then commits the group,
  releases the writer queue and answers every member: each member's ``commit()`` returns once
  its statements are committed, or raises the group's error.
- A group takes at most :data:`MAX_MEMBERS`; transactions still waiting then queue for the
  writer lock again, behind the session writers that waited meanwhile.

Members of a group see each other's released statements before they are committed (one
connection); all fail if the group's commit fails. Constraints are checked statement by
statement (the services' foreign keys are immediate): a deferred one would be checked at the
group's commit and fail every member.
"""

from __future__ import annotations

import asyncio
import sqlite3
import weakref
from collections import deque

from medmesh.platform.db.sqlite.checkpoints import checkpoint_soon
from medmesh.platform.db.sqlite.writer import Writer, begin_immediate, write_queue

#: Members of one group at most: past it, waiting writers queue behind the session writers.
MAX_MEMBERS = 64
#: Turns of the event loop the last member lets run, before it commits, for writers to join
#: (one formed smaller groups, more gained nothing: decision 0039).
LINGER_TURNS = 2
_SAVEPOINT = "medmesh_member"

_groups: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, WriteGroup]] = (
    weakref.WeakKeyDictionary()
)


def write_group(file: str, writer: Writer, timeout: float) -> WriteGroup:
    """The group commit of ``file`` (a driver file key) on the running loop."""
    loop = asyncio.get_running_loop()
    per_loop = _groups.get(loop)
    if per_loop is None:
        per_loop = _groups[loop] = {}
    group = per_loop.get(file)
    if group is None:
        group = per_loop[file] = WriteGroup(file, writer, timeout)
    return group


class GroupFailed(sqlite3.OperationalError):
    """The group's transaction ended before this member's statements were committed."""


class WriteGroup:
    """The open group transaction of one file on one loop, and the members waiting for it."""

    __slots__ = (
        "_conn",
        "_file",
        "_joiners",
        "_lock",
        "_pending",
        "_savepoint",
        "_size",
        "_timeout",
        "_writer",
    )

    def __init__(self, file: str, writer: Writer, timeout: float) -> None:
        self._file = file
        self._writer = writer
        self._timeout = timeout
        self._lock: asyncio.Lock | None = None
        #: The writer connection while a group is open (None: no group).
        self._conn: sqlite3.Connection | None = None
        self._size = 0
        #: Whether the running member is in a savepoint (the group's first member is not: its
        #: rollback is the transaction's).
        self._savepoint = False
        #: Members waiting to be handed the open group: True when handed, False when told to
        #: queue for the writer lock instead.
        self._joiners: deque[asyncio.Future[bool]] = deque()
        #: Members whose statements are released into the group, waiting for its commit.
        self._pending: list[asyncio.Future[None]] = []

    async def begin(self) -> sqlite3.Connection:
        """Wait for this member's turn; return the connection, its statements undoable alone."""
        if self._conn is None or not await self._join():
            return await self._open()
        conn = self._conn
        try:
            conn.execute(f"SAVEPOINT {_SAVEPOINT}")
        except BaseException:
            self._pass_on_or_close()
            raise
        self._savepoint = True
        return conn

    async def _join(self) -> bool:
        """Wait to be handed the open group; False when it closed without this member."""
        joined: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._joiners.append(joined)
        try:
            async with asyncio.timeout(self._timeout):
                return await joined
        except BaseException as error:
            if joined.done() and not joined.cancelled() and joined.result():
                self._pass_on_or_close()  # handed the group, but leaving: the next one takes it
            else:
                joined.cancel()
            if isinstance(error, TimeoutError):
                raise sqlite3.OperationalError("database is locked") from None
            raise

    async def _open(self) -> sqlite3.Connection:
        """Join the writer queue and open a group (``BEGIN IMMEDIATE``) as its first member."""
        lock = write_queue(self._file)
        try:
            async with asyncio.timeout(self._timeout):  # as the driver's writers wait
                await lock.acquire()
        except TimeoutError:
            raise sqlite3.OperationalError("database is locked") from None
        try:
            conn = self._writer.connection()
            await begin_immediate(conn, self._timeout)
        except BaseException:
            lock.release()
            raise
        self._lock, self._conn, self._size, self._savepoint = lock, conn, 1, False
        return conn

    async def commit(self) -> None:
        """Release this member's statements into the group; return once the group committed."""
        conn = self._conn
        assert conn is not None
        if self._savepoint:
            try:
                conn.execute(f"RELEASE {_SAVEPOINT}")
            except BaseException:
                await self.rollback()
                raise
        committed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append(committed)
        if not self._pass_on():
            try:
                # The last member: writers that become ready meanwhile join before it commits.
                for _ in range(LINGER_TURNS):
                    await asyncio.sleep(0)
                    if self._joiners:
                        break
            finally:
                self._pass_on_or_close()  # cancelled or not: the group must go on or close
        await committed

    async def rollback(self) -> None:
        """Undo this member's statements (the group's others stay); pass the group on."""
        conn = self._conn
        assert conn is not None
        if not self._savepoint:
            # The first member: its statements are all the transaction holds.
            self._close(rollback=True)
            return
        try:
            if conn.in_transaction:
                conn.execute(f"ROLLBACK TO {_SAVEPOINT}")
                conn.execute(f"RELEASE {_SAVEPOINT}")
        except sqlite3.Error:
            pass  # the transaction is gone (SQLite ended it): closing fails the others
        self._pass_on_or_close()

    def _pass_on(self) -> bool:
        """Hand the open group to the next waiting member; False when none (or it is full)."""
        while self._joiners and self._size < MAX_MEMBERS:
            joiner = self._joiners.popleft()
            if not joiner.done():
                joiner.set_result(True)
                self._size += 1
                self._savepoint = False  # until the next member opens its own
                return True
        return False

    def _pass_on_or_close(self) -> None:
        if not self._pass_on():
            self._close()

    def _close(self, *, rollback: bool = False) -> None:
        """Commit the group (or roll it back, when it holds no member's statements), answer
        its members and release the writer queue."""
        conn, lock, pending = self._conn, self._lock, self._pending
        self._conn, self._lock, self._pending, self._size = None, None, [], 0
        assert conn is not None
        assert lock is not None
        error: BaseException | None = None
        try:
            if not conn.in_transaction:
                if pending:
                    error = GroupFailed("the transaction ended before its commit")
            elif pending and not rollback:
                conn.execute("COMMIT")
        except BaseException as exc:
            error = exc
        finally:
            try:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            except sqlite3.Error as exc:
                error = error or exc
            # Members still waiting queue for the writer lock themselves.
            while self._joiners:
                joiner = self._joiners.popleft()
                if not joiner.done():
                    joiner.set_result(False)
            lock.release()
        for committed in pending:
            if committed.done():
                continue
            if error is None:
                committed.set_result(None)
            else:
                committed.set_exception(_for_member(error))
        if error is None and pending:
            checkpoint_soon(self._file)


def _for_member(error: BaseException) -> BaseException:
    """The group's error as one member raises it: a :mod:`sqlite3` error of the same kind (each
    member its own instance, the group's as its cause), anything else as :class:`GroupFailed`."""
    if isinstance(error, sqlite3.Error):
        copy = type(error)(*error.args)
        for name in ("sqlite_errorcode", "sqlite_errorname"):
            if hasattr(error, name):
                setattr(copy, name, getattr(error, name))
    else:
        copy = GroupFailed(f"the group's commit failed ({type(error).__name__})")
    copy.__cause__ = error
    return copy


__all__ = ["LINGER_TURNS", "MAX_MEMBERS", "GroupFailed", "WriteGroup", "write_group"]
