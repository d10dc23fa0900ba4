"""A request-scoped session: committed when the request succeeds, rolled back when it fails
(services never commit; they ``flush()`` when they need an id early)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import (
    AsyncSession,
)
from sqlalchemy.orm import Session
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from medmesh.platform.db.engine import Database


class RequestSession:
    """The session of one request, created on first use (requests that touch no table pay nothing)."""

    __slots__ = ("database", "session")

    def __init__(self, database: Database) -> None:
        self.database = database
        self.session: AsyncSession | None = None

    def get(self) -> AsyncSession:
        if self.session is None:
            self.session = self.database.sessionmaker()
        return self.session

    async def finish(self, *, commit: bool) -> None:
        """Commit (or roll back) and close; idempotent."""
        session, self.session = self.session, None
        if session is None or not session.in_transaction():
            # Never used (or already finished): it holds no connection and no objects, and
            # closing it would still cost a trip through SQLAlchemy's greenlet bridge.
            return

        def end(sync_session: Session) -> None:
            try:
                if commit:
                    sync_session.commit()
                else:
                    sync_session.rollback()
            finally:
                sync_session.close()

        # One trip through SQLAlchemy's greenlet bridge for both (AsyncSession's commit and
        # close are a trip each, and this runs once per request that used the database).
        await session.run_sync(end)


class SessionMiddleware:
    """Commits the request's session just before the response starts, or rolls it back.

    A response below 400 commits; a 4xx/5xx (an expected failure rendered by an error handler)
    or an exception rolls back. The commit happens before the first byte is sent, so a commit
    that fails becomes an error response (the outer error middleware renders it), never a
    success the client believes. A pure ASGI middleware rather than a ``yield`` dependency:
    FastAPI's generator dependencies cost more than the rest of a typical endpoint (see
    docs/decisions/0006-request-session-middleware.md).
    """

    def __init__(self, app: ASGIApp, database: Database) -> None:
        self.app = app
        self.database = database

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        holder = RequestSession(self.database)
        scope.setdefault("state", {})[_STATE_KEY] = holder

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start" and holder.session is not None:
                await holder.finish(commit=message["status"] < 400)
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            await holder.finish(commit=False)


_STATE_KEY = "medmesh_session"


def session_for(request: Request) -> AsyncSession:
    """The request's session: committed before a successful response is sent, rolled back on an
    error response or exception (see :class:`SessionMiddleware`)."""
    holder: RequestSession | None = request.scope.get("state", {}).get(_STATE_KEY)
    if holder is None:
        raise RuntimeError("SessionMiddleware is not installed on this app")
    return holder.get()


#: Opens (on first call) and returns the request's session; for hot paths that may not need one.
SessionSource = Callable[[], AsyncSession]


def session_source(request: Request) -> SessionSource:
    """A callable giving the request's session, opened only if it is called (see
    :func:`session_for`): a request served from caches then pays nothing for the database."""
    holder: RequestSession | None = request.scope.get("state", {}).get(_STATE_KEY)
    if holder is None:
        raise RuntimeError("SessionMiddleware is not installed on this app")
    return holder.get


async def get_session(request: Request) -> AsyncSession:
    """:func:`session_for` as a FastAPI dependency (use :data:`SessionDep`)."""
    return session_for(request)


#: The session of the request.
SessionDep = Annotated[AsyncSession, Depends(get_session)]


# --- Alembic -------------------------------------------------------------------------------
