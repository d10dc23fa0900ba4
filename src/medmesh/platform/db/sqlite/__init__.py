"""The embedded default driver, ``sqlite+medmesh``: SQLite for asyncio on the event loop's own
thread (:mod:`.driver`), with an in-process writer queue (:mod:`.writer`), WAL checkpoints off the
loop (:mod:`.checkpoints`) and read-only connections (:mod:`.reader`).
"""

from medmesh.platform.db.sqlite.checkpoints import (
    CHECKPOINT_SECONDS,
    LAST_PASS_FRAMES,
    checkpoint,
    checkpoint_soon,
    checkpoints_settled,
)
from medmesh.platform.db.sqlite.driver import (
    DBAPI,
    Connection,
    Cursor,
    SQLiteDialect_medmesh,
)
from medmesh.platform.db.sqlite.files import (
    BUSY_MS,
    CACHE_KIB,
    MMAP_BYTES,
    PRAGMAS,
    connect,
    file_identity,
    file_key,
    frames_to_copy,
)
from medmesh.platform.db.sqlite.forking import off_loop
from medmesh.platform.db.sqlite.reader import (
    open_reader,
)
from medmesh.platform.db.sqlite.writer import (
    SharedTurn,
    Writer,
    begin_immediate,
    begin_immediate_blocking,
    in_turn,
    is_write,
    write_queue,
)

__all__ = [
    "BUSY_MS",
    "CACHE_KIB",
    "CHECKPOINT_SECONDS",
    "DBAPI",
    "LAST_PASS_FRAMES",
    "MMAP_BYTES",
    "PRAGMAS",
    "Connection",
    "Cursor",
    "SQLiteDialect_medmesh",
    "SharedTurn",
    "Writer",
    "begin_immediate",
    "begin_immediate_blocking",
    "checkpoint",
    "checkpoint_soon",
    "checkpoints_settled",
    "connect",
    "file_identity",
    "file_key",
    "frames_to_copy",
    "in_turn",
    "is_write",
    "off_loop",
    "open_reader",
    "write_queue",
]
