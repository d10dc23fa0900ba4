import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import ClassVar, NamedTuple

import pytest
from fastapi import APIRouter, FastAPI
from pydantic_settings import SettingsConfigDict
from sqlalchemy import (
    Boolean,
    Column,
    Integer,
    String,
    Table,
    bindparam,
    event,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, StatementError

from medmesh.platform.app import create_service_app
from medmesh.platform.config import ServiceSettings
from medmesh.platform.db import (
    Database,
    OneRowRead,
    Rows,
    SessionDep,
    UTCDateTime,
    execute_together,
    new_metadata,
    utcnow,
    write_transaction,
)
from medmesh.platform.errors import Conflict
from medmesh.platform.testing import app_client

metadata = new_metadata()
notes = Table(
    "notes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("code", String(40), nullable=False, unique=True),
)
events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
)
marks = Table(
    "marks",
    metadata,
    Column("way", String(20), primary_key=True),
    Column("n", Integer, primary_key=True),
    Column("label", String(40), nullable=True),
    Column("on", Boolean, nullable=False),
    Column("at", UTCDateTime, nullable=False),
)
MARK_COLUMNS = ("way", "n", "label", "on", "at")


class DemoSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="MEDMESH_DEMO_", extra="ignore")
    service_name: ClassVar[str] = "demo"


def notes_router() -> APIRouter:
    router = APIRouter()

    @router.post("/notes/{code}", status_code=201)
    async def create_note(code: str, session: SessionDep) -> dict[str, str]:
        await session.execute(notes.insert().values(code=code))
        return {"code": code}

    @router.post("/notes/{code}/then-fail")
    async def create_then_fail(code: str, session: SessionDep) -> None:
        await session.execute(notes.insert().values(code=code))
        raise Conflict("changed my mind")

    @router.post("/notes/{code}/then-crash")
    async def create_then_crash(code: str, session: SessionDep) -> None:
        await session.execute(notes.insert().values(code=code))
        raise RuntimeError("unexpected")

    @router.post("/notes/{code}/twice-unflushed")
    async def create_twice_unflushed(code: str, session: SessionDep) -> dict[str, str]:
        # ORM-free inserts run at once; a deferred duplicate only fails at commit (flush).
        await session.execute(notes.insert().values(code=code))
        session.add(_Note(code=code))
        return {"code": code}

    return router


class _Note:
    """A classically mapped note, so the duplicate insert is deferred to the commit's flush."""

    def __init__(self, code: str) -> None:
        self.code = code


def _map_note() -> None:
    from sqlalchemy.orm import registry

    registry().map_imperatively(_Note, notes)


_map_note()


def demo_app(database_url: str) -> FastAPI:
    return create_service_app(
        DemoSettings(database_url=database_url),
        title="demo",
        version="0",
        description="demo",
        routers=[notes_router()],
        verify_tokens=False,
    )


async def _create_tables(database: Database) -> None:
    async with database.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)


async def _codes(database: Database) -> list[str]:
    async with database.sessionmaker() as session:
        return list((await session.scalars(select(notes.c.code).order_by(notes.c.id))).all())


async def test_session_commits_when_the_endpoint_succeeds(database_url: str) -> None:
    app = demo_app(database_url)
    async with app_client(app) as client:
        await _create_tables(app.state.database)
        response = await client.post("/notes/a1")
        codes = await _codes(app.state.database)

    assert response.status_code == 201
    assert codes == ["a1"]


async def test_session_rolls_back_when_the_endpoint_raises(database_url: str) -> None:
    app = demo_app(database_url)
    async with app_client(app) as client:
        await _create_tables(app.state.database)
        expected = await client.post("/notes/b1/then-fail")
        unexpected = await client.post("/notes/b2/then-crash")
        codes = await _codes(app.state.database)

    assert expected.status_code == 409
    assert unexpected.status_code == 500
    assert codes == []


async def test_commit_happens_before_the_response_is_sent(database_url: str) -> None:
    # The duplicate is only detected when the dependency commits. If the commit ran after
    # the response, the client would be told 200 about a change that was never stored.
    app = demo_app(database_url)
    async with app_client(app, raise_app_exceptions=True) as client:
        await _create_tables(app.state.database)
        response = await client.post("/notes/dup/twice-unflushed")
        codes = await _codes(app.state.database)

    assert response.status_code == 500
    assert response.json()["code"] == "internal_error"
    assert codes == []


async def test_utc_datetime_refuses_naive_datetimes(database_url: str) -> None:
    database = Database(database_url)
    try:
        await _create_tables(database)
        with pytest.raises(StatementError, match="naive datetime"):
            async with database.unit_of_work() as session:
                await session.execute(events.insert().values(at=datetime(2024, 1, 1, 12, 0)))
        async with database.sessionmaker() as session:
            count = await session.scalar(select(func.count()).select_from(events))
    finally:
        await database.dispose()

    assert count == 0


async def test_utc_datetime_returns_aware_utc(database_url: str) -> None:
    plus_two = timezone(timedelta(hours=2))
    stored = datetime(2024, 3, 1, 14, 30, 15, 123456, tzinfo=plus_two)
    database = Database(database_url)
    try:
        await _create_tables(database)
        async with database.unit_of_work() as session:
            await session.execute(events.insert().values(at=stored))
            await session.execute(events.insert().values(at=utcnow()))
        async with database.sessionmaker() as session:
            first, second = (await session.scalars(select(events.c.at).order_by(events.c.id))).all()
    finally:
        await database.dispose()

    assert first == stored
    assert first.tzinfo == UTC
    assert first.hour == 12
    assert second.tzinfo == UTC


async def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    database = Database(f"sqlite+medmesh:///{tmp_path / 'nested' / 'wal.db'}")
    try:
        async with database.engine.connect() as conn:
            mode = await conn.scalar(text("PRAGMA journal_mode"))
            foreign_keys = await conn.scalar(text("PRAGMA foreign_keys"))
    finally:
        await database.dispose()

    assert mode == "wal"
    assert foreign_keys == 1
    assert (tmp_path / "nested").is_dir()


async def _insert_then_fail(database: Database) -> None:
    async with database.unit_of_work() as session:
        await session.execute(notes.insert().values(code="dropped"))
        raise RuntimeError("abort")


async def test_unit_of_work_commits_and_rolls_back(database_url: str) -> None:
    database = Database(database_url)
    try:
        await _create_tables(database)
        async with database.unit_of_work() as session:
            await session.execute(notes.insert().values(code="kept"))
        with pytest.raises(RuntimeError, match="abort"):
            await _insert_then_fail(database)
        codes = await _codes(database)
    finally:
        await database.dispose()

    assert codes == ["kept"]


class EventAt(NamedTuple):
    id: int
    at: datetime


_EVENT = OneRowRead(select(events.c.id, events.c.at).where(events.c.id == bindparam("id")), EventAt)


async def test_one_row_read_sees_each_commit_with_the_columns_types(database_url: str) -> None:
    stored = datetime(2024, 3, 1, 14, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2)))
    database = Database(database_url)
    try:
        await _create_tables(database)
        missing = await _EVENT.first(database, {"id": 1})
        async with database.unit_of_work() as session:
            await session.execute(events.insert().values(at=stored))
        first = await _EVENT.first(database, {"id": 1})
        async with database.unit_of_work() as session:
            await session.execute(events.update().values(at=stored + timedelta(days=1)))
        second = await _EVENT.first(database, {"id": 1})
    finally:
        await database.dispose()

    assert missing is None
    assert first == EventAt(1, stored)
    assert first.at.tzinfo == UTC
    # A commit made after the previous read is seen by the next one (nothing is cached).
    assert second == EventAt(1, stored + timedelta(days=1))


async def _end_server_connections(database_url: str) -> None:
    """Make the server end every connection to ``database_url``'s database, as a restart does."""
    import asyncpg  # type: ignore[import-untyped]

    url = make_url(database_url)
    admin = await asyncpg.connect(
        url.set(drivername="postgresql", database="postgres").render_as_string(False)
    )
    others = "datname = $1 AND pid <> pg_backend_pid()"
    try:
        ended = await admin.fetchval(
            f"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE {others}",
            url.database,
        )
        for _ in range(100):  # the backends exit after the signal
            if not await admin.fetchval(
                f"SELECT count(*) FROM pg_stat_activity WHERE {others}", url.database
            ):
                break
            await asyncio.sleep(0.05)
    finally:
        await admin.close()
    assert ended >= 1


async def test_pooled_connections_the_server_ended_are_replaced_before_use(
    postgres_database_url: str,
) -> None:
    database = Database(postgres_database_url, pool_size=2)
    try:
        await _create_tables(database)
        async with database.unit_of_work() as session:
            await session.execute(events.insert().values(at=utcnow()))
        assert await _EVENT.first(database, {"id": 1}) is not None
        await _end_server_connections(postgres_database_url)
        await asyncio.sleep(0.05)  # the loop reads each connection's end

        # Without a check on checkout the next statements would fail on dead connections.
        read = await _EVENT.first(database, {"id": 1})
        async with database.unit_of_work() as session:
            await session.execute(notes.insert().values(code="after-restart"))
        codes = await _codes(database)
    finally:
        await database.dispose()

    assert read is not None
    assert read.id == 1
    assert codes == ["after-restart"]


async def test_a_service_pools_as_many_server_connections_as_its_setting_says(
    postgres_database_url: str,
) -> None:
    app = create_service_app(
        DemoSettings(database_url=postgres_database_url, database_pool_size=7),
        title="demo",
        version="0",
        description="demo",
        routers=[notes_router()],
        verify_tokens=False,
    )
    try:
        assert app.state.database.engine.pool.size() == 7
    finally:
        await app.state.database.dispose()


async def test_one_row_read_on_postgresql_reports_a_refused_value_as_sqlalchemy_does(
    postgres_database_url: str,
) -> None:
    database = Database(postgres_database_url)
    try:
        await _create_tables(database)
        with pytest.raises(DBAPIError, match="invalid input for query argument"):
            await _EVENT.first(database, {"id": 2**70})
        # The connection went back to the pool usable, outside any transaction.
        async with database.unit_of_work() as session:
            await session.execute(events.insert().values(at=utcnow()))
        found = await _EVENT.first(database, {"id": 1})
    finally:
        await database.dispose()

    assert found is not None


async def test_one_row_read_on_sqlite_cannot_write(tmp_path: Path) -> None:
    database = Database(f"sqlite+medmesh:///{tmp_path / 'reader.db'}")
    try:
        await _create_tables(database)
        reader = database.committed_reader()
        assert reader is not None
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            reader.execute("INSERT INTO notes (code) VALUES ('x')")
    finally:
        await database.dispose()


async def test_execute_together_runs_inserts_with_their_types_and_errors(database_url: str) -> None:
    plus_two = timezone(timedelta(hours=2))
    stored = datetime(2024, 3, 1, 14, 30, tzinfo=plus_two)
    database = Database(database_url)
    seen: list[str] = []
    try:
        await _create_tables(database)
        async with database.unit_of_work() as session:
            await execute_together(
                session,
                [
                    (notes.insert(), [{"code": "a"}, {"code": "b"}]),
                    (notes.insert(), {"code": "c"}),
                    (events.insert(), {"at": stored}),
                ],
            )
        with pytest.raises(IntegrityError):
            async with database.unit_of_work() as session:
                await execute_together(
                    session, [(notes.insert(), {"code": "d"}), (notes.insert(), {"code": "a"})]
                )
        with pytest.raises(StatementError, match="naive datetime"):
            async with database.unit_of_work() as session:
                await execute_together(session, [(events.insert(), {"at": datetime(2024, 1, 1)})])

        # Something listening to the engine's statements (tracing) sees these inserts too.
        def listen(conn: object, cursor: object, statement: str, *args: object) -> None:
            seen.append(statement.split()[0])

        event.listen(database.engine.sync_engine, "before_cursor_execute", listen)
        async with database.unit_of_work() as session:
            await execute_together(session, [(notes.insert(), [{"code": "e"}, {"code": "f"}])])
        codes = await _codes(database)
        async with database.sessionmaker() as session:
            at = await session.scalar(select(events.c.at))
    finally:
        await database.dispose()

    assert codes == ["a", "b", "c", "e", "f"]
    assert at == stored
    assert at.tzinfo == UTC
    assert "INSERT" in seen


def _marks(way: str) -> list[tuple[object, ...]]:
    plus_two = timezone(timedelta(hours=2))
    return [
        (way, 1, "first", True, datetime(2024, 3, 1, 14, 30, 0, 120000, tzinfo=plus_two)),
        (way, 2, None, False, datetime(2024, 3, 2, 0, 0, tzinfo=UTC)),
        (way, 3, "ü", True, datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
    ]


async def test_rows_as_tuples_store_what_rows_as_dicts_store(database_url: str) -> None:
    """``Rows`` (tuples of named columns) against dicts, through every path a write takes:
    execute_together's direct inserts, its SQLAlchemy path (a listener), write_transaction, and
    columns out of the table's order (bound through dicts)."""
    database = Database(database_url)
    shuffled = ("at", "n", "way", "on", "label")
    try:
        await _create_tables(database)
        async with database.unit_of_work() as session:
            await execute_together(
                session,
                [
                    (
                        insert(marks),
                        [dict(zip(MARK_COLUMNS, r, strict=True)) for r in _marks("dicts")],
                    ),
                    (insert(marks), Rows(MARK_COLUMNS, _marks("rows"))),
                    (
                        insert(marks),
                        Rows(
                            shuffled,
                            [
                                tuple(dict(zip(MARK_COLUMNS, r, strict=True))[c] for c in shuffled)
                                for r in _marks("shuffled")
                            ],
                        ),
                    ),
                ],
            )
        async with write_transaction(database) as transaction:
            await transaction.execute_all(
                [(insert(marks), Rows(MARK_COLUMNS, _marks("transaction")))]
            )
        naive = Rows(MARK_COLUMNS, [("naive", 1, None, True, datetime(2024, 1, 1))])
        with pytest.raises(StatementError, match="naive datetime"):
            async with database.unit_of_work() as session:
                await execute_together(session, [(insert(marks), naive)])
        with pytest.raises(StatementError, match="naive datetime"):
            async with write_transaction(database) as transaction:
                await transaction.execute(insert(marks), naive)
        seen: list[str] = []

        def listen(conn: object, cursor: object, statement: str, *args: object) -> None:
            seen.append(statement.split()[0])

        event.listen(database.engine.sync_engine, "before_cursor_execute", listen)
        async with database.unit_of_work() as session:
            await execute_together(
                session, [(insert(marks), Rows(MARK_COLUMNS, _marks("listened")))]
            )
        event.remove(database.engine.sync_engine, "before_cursor_execute", listen)
        async with database.engine.connect() as conn:
            stored = (await conn.execute(text("SELECT * FROM marks ORDER BY way, n"))).all()
    finally:
        await database.dispose()

    assert "INSERT" in seen
    by_way: dict[str, list[tuple[object, ...]]] = {}
    for row in stored:
        by_way.setdefault(row[0], []).append(tuple(row[1:]))
    assert sorted(by_way) == ["dicts", "listened", "rows", "shuffled", "transaction"]
    # What the database holds, as stored (times as their column type writes them).
    for way in ("listened", "rows", "shuffled", "transaction"):
        assert by_way[way] == by_way["dicts"], way
    assert [label for _, label, _, _ in by_way["dicts"]] == ["first", None, "ü"]


def _end_server_connections_unseen(database_url: str) -> None:
    """End every server connection while this event loop is blocked, so the pool's connections
    still look open (their sockets' end is not read yet) when the next statement takes one."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, _end_server_connections(database_url)).result()


class ConnectionsEnded:
    """Ends every server connection of a database, unseen by the pool's liveness check: while
    they sit idle in the pool (the loop has not read their end: the check's ``poll`` sees it),
    or just after the next checkout (the check passed: the first statement fails at ``BEGIN``)."""

    def __init__(self, database: Database, url: str, when: str) -> None:
        self.url = url
        self.when = when
        self.armed = False
        event.listen(database.engine.sync_engine, "checkout", self._after_checkout)

    def __call__(self) -> None:
        if self.when == "idle":
            _end_server_connections_unseen(self.url)
        else:
            self.armed = True

    def _after_checkout(self, *_: object) -> None:
        if self.armed:
            self.armed = False
            _end_server_connections_unseen(self.url)


@pytest.mark.parametrize("when", ["idle", "after-checkout"])
async def test_a_connection_the_server_ended_unseen_costs_no_statement_an_error(
    postgres_database_url: str, when: str
) -> None:
    database = Database(postgres_database_url, pool_size=2)
    end_connections = ConnectionsEnded(database, postgres_database_url, when)
    try:
        await _create_tables(database)
        async with database.unit_of_work() as session:
            await session.execute(events.insert().values(at=utcnow()))

        end_connections()
        async with database.unit_of_work() as session:
            await session.execute(notes.insert().values(code="first-statement"))

        end_connections()
        async with database.unit_of_work() as session:
            await execute_together(session, [(notes.insert(), {"code": "together"})])

        end_connections()
        async with database.unit_of_work() as session:
            counted = await session.scalar(select(func.count()).select_from(events))

        end_connections()
        read = await _EVENT.first(database, {"id": 1})
        codes = await _codes(database)
    finally:
        await database.dispose()

    assert read is not None
    assert read.id == 1
    assert codes == ["first-statement", "together"]
    assert counted == 1
    assert end_connections.armed is False


async def test_a_connection_lost_after_a_statement_ran_is_not_retried(
    postgres_database_url: str,
) -> None:
    database = Database(postgres_database_url, pool_size=2)
    try:
        await _create_tables(database)

        async def insert_twice_losing_the_connection_between() -> None:
            async with database.unit_of_work() as session:
                await session.execute(notes.insert().values(code="lost"))
                _end_server_connections_unseen(postgres_database_url)
                await session.execute(notes.insert().values(code="after"))

        with pytest.raises(DBAPIError) as raised:
            await insert_twice_losing_the_connection_between()
        codes = await _codes(database)
    finally:
        await database.dispose()

    assert raised.value.connection_invalidated is True
    assert codes == []
