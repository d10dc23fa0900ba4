"""The pytest plugin every medmesh test suite uses.

Enable it with ``pytest_plugins = ["medmesh.platform.testing"]`` in ``conftest.py``.

- ``database_url``: a fresh, empty database per test, on SQLite always and on
  real PostgreSQL too when ``MEDMESH_TEST_POSTGRES_URL`` is set (the fixture is
  parametrized, so every database test runs on both). When the variable is set
  and the server cannot be reached the test fails; it is never skipped.
- ``database_templates``: a service's schema migrated once per test session and
  copied into each test's database (:class:`DatabaseTemplates`); a conftest that
  overrides ``database_upgrade`` with a service's ``upgrade`` makes every
  ``database_url`` of its directory start at that service's head.
- ``mqtt_url``: the broker of ``MEDMESH_TEST_MQTT_URL`` (tests that need it fail
  when it is set and unreachable, and are skipped only when it is not set).
- ``redis_url``: the server of ``MEDMESH_TEST_REDIS_URL``, on the same rule: the
  test fails when it is set and unreachable, and is skipped only when it is not set.
- :func:`app_client`: an httpx client talking to an app in process, with the
  app's lifespan running around it.
- ``log_lines``: the JSON log lines the code under test writes, parsed.
"""

from __future__ import annotations

import asyncio
import io
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url


class TestEnvironment(BaseSettings):
    """Where the real test servers are (``MEDMESH_TEST_*``)."""

    __test__ = False
    model_config = SettingsConfigDict(env_prefix="MEDMESH_TEST_", extra="ignore")

    postgres_url: str = ""
    mqtt_url: str = ""
    redis_url: str = ""


def test_environment() -> TestEnvironment:
    return TestEnvironment()


test_environment.__test__ = False  # type: ignore[attr-defined]


def database_backends() -> list[str]:
    """``sqlite`` always; ``postgres`` when MEDMESH_TEST_POSTGRES_URL is set."""
    return ["sqlite", "postgres"] if test_environment().postgres_url else ["sqlite"]


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def create_postgres_database(base_url: str, template: str | None = None) -> str:
    """Create a database on the server of ``base_url`` (empty, or a copy of the database named
    ``template``); return its async URL."""
    import asyncpg  # type: ignore[import-untyped]

    name = f"medmesh_test_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(_asyncpg_dsn(base_url), timeout=10)
    try:
        copy = f' TEMPLATE "{template}"' if template else ""
        await conn.execute(f'CREATE DATABASE "{name}"{copy}')
    finally:
        await conn.close()
    return (
        make_url(base_url)
        .set(drivername="postgresql+asyncpg", database=name)
        .render_as_string(hide_password=False)
    )


async def drop_postgres_database(base_url: str, url: str) -> None:
    import asyncpg

    name = make_url(url).database
    conn = await asyncpg.connect(_asyncpg_dsn(base_url), timeout=10)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@asynccontextmanager
async def postgres_database(base_url: str) -> AsyncIterator[str]:
    """A new, empty database on the server of ``base_url`` while the block runs (then dropped)."""
    url = await create_postgres_database(base_url)
    try:
        yield url
    finally:
        await drop_postgres_database(base_url, url)


Upgrade = Callable[[str], Awaitable[None]]


class DatabaseTemplates:
    """A service's schema migrated once per test session, copied into each test's database.

    Running a service's migrations costs more than copying their result: a SQLite test
    database is a copy of a migrated file, a PostgreSQL one is made with
    ``CREATE DATABASE … TEMPLATE`` from a database migrated once.
    """

    def __init__(self, directory: Path, postgres_url: str) -> None:
        self.directory = directory
        self.postgres_url = postgres_url
        self._sqlite: dict[str, Path] = {}
        self._postgres: dict[str, str] = {}
        #: databases this object made at a service's head: database name or path -> service
        self._at_head: dict[str, str] = {}

    @staticmethod
    def _key(upgrade: Upgrade) -> str:
        return f"{upgrade.__module__}.{upgrade.__qualname__}"

    async def _sqlite_template(self, key: str, upgrade: Upgrade) -> Path:
        template = self._sqlite.get(key)
        if template is None:
            template = self.directory / f"{key}.db"
            await upgrade(f"sqlite+medmesh:///{template}")
            self._sqlite[key] = template
        return template

    async def _postgres_template(self, key: str, upgrade: Upgrade) -> str:
        template = self._postgres.get(key)
        if template is None:
            template = await create_postgres_database(self.postgres_url)
            await upgrade(template)
            self._postgres[key] = template
        return make_url(template).database or ""

    @asynccontextmanager
    async def database(self, backend: str, directory: Path, upgrade: Upgrade) -> AsyncIterator[str]:
        """A new database at ``upgrade``'s head while the block runs: ``directory/test.db`` on
        ``sqlite``, a new database on the PostgreSQL server on ``postgres`` (then dropped)."""
        key = self._key(upgrade)
        if backend == "sqlite":
            path = directory / "test.db"
            shutil.copyfile(await self._sqlite_template(key, upgrade), path)
            self._at_head[str(path)] = key
            try:
                yield f"sqlite+medmesh:///{path}"
            finally:
                self._at_head.pop(str(path), None)
            return
        template = await self._postgres_template(key, upgrade)
        url = await create_postgres_database(self.postgres_url, template=template)
        name = make_url(url).database or ""
        self._at_head[name] = key
        try:
            yield url
        finally:
            self._at_head.pop(name, None)
            await drop_postgres_database(self.postgres_url, url)

    async def migrate(self, url: str, upgrade: Upgrade) -> None:
        """Bring the database at ``url`` to what ``upgrade(url)`` makes of it: nothing to do for
        one :meth:`database` made at that head; an empty one becomes a copy of the template; one
        that already holds tables is upgraded in place."""
        key = self._key(upgrade)
        parsed = make_url(url)
        if self._at_head.get(parsed.database or "") == key:
            return
        if parsed.get_backend_name() == "sqlite":
            path = Path(parsed.database or "")
            if path.exists() and path.stat().st_size > 0:  # noqa: ASYNC240
                await upgrade(url)
                return
            shutil.copyfile(await self._sqlite_template(key, upgrade), path)
            return
        import asyncpg

        conn = await asyncpg.connect(_asyncpg_dsn(url), timeout=10)
        try:
            has_tables = await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = 'public')"
            )
        finally:
            await conn.close()
        if has_tables:
            await upgrade(url)
            return
        template = await self._postgres_template(key, upgrade)
        conn = await asyncpg.connect(_asyncpg_dsn(self.postgres_url), timeout=10)
        try:
            name = parsed.database
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        finally:
            await conn.close()

    async def drop(self) -> None:
        """Drop the PostgreSQL templates (the SQLite ones go with the session's temporary files)."""
        for template in self._postgres.values():
            await drop_postgres_database(self.postgres_url, template)
        self._postgres.clear()


@pytest.fixture(scope="session")
def database_templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DatabaseTemplates]:
    """Migrated schemas for this test session (see :class:`DatabaseTemplates`)."""
    templates = DatabaseTemplates(
        tmp_path_factory.mktemp("templates"), test_environment().postgres_url
    )
    yield templates
    if templates.postgres_url:
        asyncio.run(templates.drop())


@pytest.fixture
def database_upgrade() -> Upgrade | None:
    """The migrations each test's ``database_url`` starts from: none (an empty database) unless
    a conftest overrides this with a service's ``upgrade``; a test module that migrates step by
    step overrides it back to ``None``."""
    return None


@pytest.fixture(params=database_backends())
async def database_url(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    database_templates: DatabaseTemplates,
    database_upgrade: Upgrade | None,
) -> AsyncIterator[str]:
    """A fresh database URL (SQLite file, or a new PostgreSQL database): empty, or at the head
    of ``database_upgrade``'s migrations when a conftest sets that."""
    if database_upgrade is not None:
        async with database_templates.database(request.param, tmp_path, database_upgrade) as url:
            yield url
        return
    if request.param == "sqlite":
        yield f"sqlite+medmesh:///{tmp_path / 'test.db'}"
        return
    async with postgres_database(test_environment().postgres_url) as url:
        yield url


@pytest.fixture
async def postgres_database_url() -> AsyncIterator[str]:
    """A new, empty PostgreSQL database, for what only a server database has (its pool); skips
    only when MEDMESH_TEST_POSTGRES_URL is not set."""
    base = test_environment().postgres_url
    if not base:
        pytest.skip("MEDMESH_TEST_POSTGRES_URL is not set")
    async with postgres_database(base) as url:
        yield url


@pytest.fixture
def mqtt_url() -> str:
    """The real MQTT broker's URL; skips only when MEDMESH_TEST_MQTT_URL is not set."""
    url = test_environment().mqtt_url
    if not url:
        pytest.skip("MEDMESH_TEST_MQTT_URL is not set")
    return url


@pytest.fixture
async def redis_url() -> AsyncIterator[str]:
    """The real Redis of MEDMESH_TEST_REDIS_URL, flushed; skips only when the variable is unset.

    When the variable is set and the server does not answer, the test fails.
    """
    url = test_environment().redis_url
    if not url:
        pytest.skip("MEDMESH_TEST_REDIS_URL is not set")
    import redis.asyncio as redis_asyncio

    client = redis_asyncio.from_url(url)
    try:
        await client.ping()
        yield url
    finally:
        await client.aclose()


@asynccontextmanager
async def serve_app(app: Any) -> AsyncIterator[str]:
    """Serve an ASGI app with uvicorn on a free local port (no lifespan); yield its base URL.

    For tests that need real HTTP between two parts (a client library, a proxy, a subprocess)."""
    import asyncio
    import socket

    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, lifespan="off", log_config=None, log_level="warning", ws="none")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                raise RuntimeError("the server did not start")
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


@asynccontextmanager
async def app_client(
    app: FastAPI, *, base_url: str = "http://testserver", raise_app_exceptions: bool = False
) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client calling ``app`` in process, with the app's lifespan running around it.

    Unexpected exceptions are answered by the app (500) rather than raised into the test,
    as a real server would; pass ``raise_app_exceptions=True`` to see them.
    """
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
            yield client


class LogLines:
    """The log lines written while the fixture is active, each parsed from JSON."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def records(self) -> list[dict[str, Any]]:
        return [orjson.loads(line) for line in self.text.splitlines() if line.strip()]

    def events(self, event: str) -> list[dict[str, Any]]:
        return [r for r in self.records() if r.get("event") == event]


@pytest.fixture
def log_lines() -> Iterator[LogLines]:
    """Capture what the code under test logs (the platform's JSON lines)."""
    from medmesh.platform.logging import set_log_stream

    captured = LogLines()
    previous = set_log_stream(captured.stream)
    try:
        yield captured
    finally:
        set_log_stream(previous)


class TokenFactory:
    """Signs access tokens for resource-server tests, as auth-service would issue them.

    The service under test verifies them with :meth:`jwks` (give it to ``TokenVerifier(jwks=...)``).
    """

    def __init__(self, issuer: str = "http://auth.test") -> None:
        from medmesh.platform.tokens import SigningKey

        self.issuer = issuer
        self.key = SigningKey.generate_rsa()

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.key.public_jwk()]}

    def token(
        self,
        scope: str,
        *,
        audience: str | list[str],
        sub: str = "user-1",
        client_id: str = "test-client",
        roles: list[str] | None = None,
        patient: str | None = None,
        fhir_user: str | None = None,
        lifetime: int = 900,
    ) -> str:
        """A signed access token with the claims of ARCHITECTURE §4."""
        import time
        import uuid

        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": sub,
            "aud": audience if isinstance(audience, list) else [audience],
            "exp": now + lifetime,
            "iat": now,
            "nbf": now,
            "jti": uuid.uuid4().hex,
            "scope": scope,
            "client_id": client_id,
            "roles": roles or [],
        }
        if patient is not None:
            claims["patient"] = patient
        if fhir_user is not None:
            claims["fhirUser"] = fhir_user
        return self.key.sign(claims)

    def headers(self, scope: str, **claims: Any) -> dict[str, str]:
        """``Authorization: Bearer`` headers for a token with ``scope``."""
        return {"Authorization": "Bearer " + self.token(scope, **claims)}


@pytest.fixture(scope="session")
def token_factory() -> TokenFactory:
    """One signing key per test session; tokens for any scope, audience, patient."""
    return TokenFactory()
