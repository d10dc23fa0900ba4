"""Databases: the engine per service, the request-scoped session, Alembic migrations, column types
and the statements that skip the ORM session on hot paths. The embedded driver is :mod:`.sqlite`.
"""

from medmesh.platform.db import sqlite
from medmesh.platform.db.direct_writes import (
    WriteTransaction,
    write_transaction,
)
from medmesh.platform.db.engine import (
    PING_AFTER_IDLE_SECONDS,
    SQLITE_CHECKPOINT_PAGES,
    Database,
    FreshConnectionSession,
    create_engine,
    create_unpooled_engine,
    dispose_engine,
    is_sqlite,
    sqlite_writer_engine,
)
from medmesh.platform.db.fast import (
    OneRowRead,
    Rows,
    Statement,
    execute_together,
    run_together,
)
from medmesh.platform.db.migrations import (
    alembic_config,
    run_migrations_online,
    upgrade_database,
)
from medmesh.platform.db.session import (
    RequestSession,
    SessionDep,
    SessionMiddleware,
    SessionSource,
    get_session,
    session_for,
    session_source,
)
from medmesh.platform.db.types import (
    NAMING_CONVENTION,
    Base,
    UTCDateTime,
    new_metadata,
    utcnow,
)

__all__ = [
    "NAMING_CONVENTION",
    "PING_AFTER_IDLE_SECONDS",
    "SQLITE_CHECKPOINT_PAGES",
    "Base",
    "Database",
    "FreshConnectionSession",
    "OneRowRead",
    "RequestSession",
    "Rows",
    "SessionDep",
    "SessionMiddleware",
    "SessionSource",
    "Statement",
    "UTCDateTime",
    "WriteTransaction",
    "alembic_config",
    "create_engine",
    "create_unpooled_engine",
    "dispose_engine",
    "execute_together",
    "get_session",
    "is_sqlite",
    "new_metadata",
    "run_migrations_online",
    "run_together",
    "session_for",
    "session_source",
    "sqlite",
    "sqlite_writer_engine",
    "upgrade_database",
    "utcnow",
    "write_transaction",
]
