"""A resource server's copy of auth's revocation list (platform.tokens.revocation).

The list comes from a real auth-service app (in process, or over real HTTP for the service
wiring); tokens are hashed and looked up, pulls go on from their cursor, and a list that auth
has not refreshed for too long refuses bearer tokens with 503 instead of accepting them unchecked.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
import uvicorn
from fastapi import APIRouter, FastAPI
from pydantic_settings import SettingsConfigDict

from medmesh.auth.bootstrap import CLI_CLIENT_ID, DEMO_SERVICE_CLIENT_ID
from medmesh.platform.app import create_service_app
from medmesh.platform.config import ServiceSettings
from medmesh.platform.testing import LogLines, app_client
from medmesh.platform.tokens import (
    CurrentPrincipal,
    RevocationFeed,
    RevocationsUnavailable,
    revocation_list_url,
)
from tests.auth.conftest import AuthHarness, claims_of, light_settings, run_auth

LIST_PATH = "/oauth/revocations"


@pytest.fixture
async def auth(database_url: str, tmp_path: Path) -> AsyncIterator[AuthHarness]:
    async with run_auth(light_settings(database_url, tmp_path)) as harness:
        yield harness


def feed_of(auth: AuthHarness, **options: Any) -> RevocationFeed:
    return RevocationFeed(auth.settings.issuer + LIST_PATH, http=auth.http, **options)


async def refuses(feed: RevocationFeed, token: str) -> bool:
    claims = claims_of(token)
    return await feed.refuses(
        jti=claims["jti"],
        sid=claims.get("sid"),
        sub=claims["sub"],
        client_id=claims["client_id"],
        issued_at=claims["iat"],
    )


async def revoke(auth: AuthHarness, token: str, client_id: str) -> None:
    response = await auth.http.post(
        "/oauth/revoke", data={"token": token}, headers=auth.basic(client_id)
    )
    assert response.status_code == 200


async def test_the_feed_refuses_what_auth_revoked_by_token_session_user_and_client(
    auth: AuthHarness,
) -> None:
    feed = feed_of(auth)
    assert await feed.poll() is True
    kept, revoked = await auth.access_token(), await auth.access_token()
    session = (await auth.login()).json()
    user = await auth.create_user("operator", roles=["admin"])
    user_token = (await auth.login("operator", "a long enough password")).json()["access_token"]
    await auth.create_client(client_id="old-app")
    client_token = await auth.access_token("old-app")
    assert [await refuses(feed, t) for t in (revoked, session["access_token"])] == [False, False]

    await revoke(auth, revoked, DEMO_SERVICE_CLIENT_ID)
    await revoke(auth, session["refresh_token"], CLI_CLIENT_ID)
    admin = await auth.admin_headers()
    await auth.http.patch(f"/admin/users/{user['id']}", json={"disabled": True}, headers=admin)
    await auth.http.patch("/admin/clients/old-app", json={"disabled": True}, headers=admin)
    cursor = feed.cursor
    assert await feed.poll() is True

    assert feed.cursor != cursor
    for token in (revoked, session["access_token"], user_token, client_token):
        assert await refuses(feed, token) is True
    assert await refuses(feed, kept) is False
    assert len(feed.entries) == 4


async def test_pulls_go_on_from_the_cursor_and_merge_what_comes_again(
    auth: AuthHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("medmesh.auth.tokens.revocation_list.PAGE_SIZE", 2)
    tokens = [await auth.access_token() for _ in range(5)]
    for token in tokens[:3]:
        await revoke(auth, token, DEMO_SERVICE_CLIENT_ID)
    asked: list[str | None] = []
    auth.http.event_hooks["request"].append(lambda request: _record(asked, request))
    feed = feed_of(auth)
    assert await feed.poll() is True  # two pages
    assert [await refuses(feed, t) for t in tokens] == [True, True, True, False, False]
    first_cursor = feed.cursor
    await revoke(auth, tokens[3], DEMO_SERVICE_CLIENT_ID)
    assert await feed.poll() is True

    assert [await refuses(feed, t) for t in tokens] == [True, True, True, True, False]
    assert asked[0] is None
    assert asked[2] == first_cursor
    assert len(feed.entries) == 4


async def _record(asked: list[str | None], request: httpx.Request) -> None:
    if request.url.path == LIST_PATH:
        asked.append(request.url.params.get("after"))


async def test_a_list_never_pulled_or_too_old_refuses_with_503_and_says_so_once(
    auth: AuthHarness, log_lines: LogLines
) -> None:
    now = [1000.0]
    feed = feed_of(auth, max_staleness_seconds=60, clock=lambda: now[0])
    token = await auth.access_token()
    with pytest.raises(RevocationsUnavailable) as never:
        await refuses(feed, token)
    assert (never.value.status, never.value.code) == (503, "revocations_unavailable")

    assert await feed.poll() is True
    assert await refuses(feed, token) is False
    feed.url = auth.settings.issuer + "/oauth/no-such-list"  # auth stops answering
    now[0] += 30
    assert await feed.poll() is False
    assert await refuses(feed, token) is False  # the last list, 30 s old, still serves
    now[0] += 31
    assert await feed.poll() is False
    assert await feed.poll() is False
    with pytest.raises(RevocationsUnavailable) as stale:
        await refuses(feed, token)
    assert stale.value.headers == {"Retry-After": "1"}
    assert [line["event"] for line in log_lines.records() if "revocation" in line["event"]] == [
        "revocation_poll_failed",
        "revocation_poll_failed",
        "revocation_list_stale",
        "revocation_poll_failed",
    ]

    feed.url = auth.settings.issuer + LIST_PATH  # auth is back
    assert await feed.poll() is True
    assert await refuses(feed, token) is False
    assert log_lines.events("revocation_list_fresh") != []


async def test_a_malformed_page_keeps_the_list_and_cursor(auth: AuthHarness) -> None:
    feed = feed_of(auth)
    assert await feed.poll() is True
    token = await auth.access_token()
    await revoke(auth, token, DEMO_SERVICE_CLIENT_ID)
    cursor = feed.cursor
    feed.url = auth.settings.issuer + "/.well-known/jwks.json"  # JSON, but not a list
    assert await feed.poll() is False
    assert feed.cursor == cursor
    assert feed.failed_polls == 1
    assert await refuses(feed, token) is False


class ResourceSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="MEDMESH_RESOURCE_TEST_", extra="ignore")
    service_name: ClassVar[str] = "phi"  # tokens for medmesh-phi


def test_the_list_is_found_next_to_the_jwks_unless_configured() -> None:
    inside = ResourceSettings(
        issuer="http://localhost:8001", jwks_url="http://auth:8001/.well-known/jwks.json"
    )
    assert revocation_list_url(inside) == "http://auth:8001/oauth/revocations"
    assert revocation_list_url(ResourceSettings(issuer="http://a.test/")) == (
        "http://a.test/oauth/revocations"
    )
    configured = ResourceSettings(revocation_url="http://b.test/list")
    assert revocation_list_url(configured) == "http://b.test/list"


def test_turning_the_check_off_is_refused_in_production(tmp_path: Path) -> None:
    settings = ResourceSettings(
        environment="production",
        audit_keys="k1:" + "A" * 43,
        revocation_poll_seconds=0,
        database_url=f"sqlite+medmesh:///{tmp_path / 'rs.db'}",
    )
    with pytest.raises(RuntimeError, match="REVOCATION_POLL_SECONDS=0 is refused in production"):
        resource_app(settings)


def resource_app(settings: ResourceSettings) -> FastAPI:
    router = APIRouter()

    @router.get("/whoami")
    async def whoami(principal: CurrentPrincipal) -> dict[str, str]:
        return {"sub": principal.sub}

    return create_service_app(
        settings, title="resource", version="0", description="resource", routers=[router]
    )


@contextlib.asynccontextmanager
async def serve_on(app: FastAPI, sock: socket.socket) -> AsyncIterator[None]:
    """Serve ``app`` over real HTTP on a socket bound earlier (its lifespan runs elsewhere)."""
    config = uvicorn.Config(app, lifespan="off", log_config=None, log_level="warning", ws="none")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            assert not task.done(), "the server did not start"
            await asyncio.sleep(0.01)
        yield
    finally:
        server.should_exit = True
        await task


async def eventually(probe: Any, want: int, what: str) -> httpx.Response:
    """The first answer with status ``want``, asking for at most 30 s (a busy machine is slow)."""
    deadline = time.monotonic() + 30
    while True:
        response: httpx.Response = await probe()
        if response.status_code == want or time.monotonic() > deadline:
            assert response.status_code == want, f"{what}: {response.status_code} {response.text}"
            return response
        await asyncio.sleep(0.05)


async def test_a_service_started_before_auth_is_ready_once_auth_answers_and_then_refuses_revoked(
    database_url: str, tmp_path: Path
) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    auth_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    auth_settings = light_settings(database_url, tmp_path)
    settings = ResourceSettings(
        database_url=f"sqlite+medmesh:///{tmp_path / 'resource.db'}",
        issuer=auth_settings.issuer,
        jwks_url=auth_url + "/.well-known/jwks.json",
        revocation_poll_seconds=0.05,
    )
    app = resource_app(settings)
    async with app_client(app) as service:
        # auth is not up: not ready, and a bearer token cannot be checked
        unready = await service.get("/readyz")
        assert unready.status_code == 503
        assert unready.json() == {
            "status": "unavailable",
            "problems": ["revocations: RevocationsUnavailable"],
        }
        async with run_auth(auth_settings) as auth, serve_on(auth.app, sock):
            token = await auth.access_token(audience="medmesh-phi")
            await eventually(lambda: service.get("/readyz"), 200, "ready once auth answers")
            me = await service.get("/whoami", headers={"Authorization": f"Bearer {token}"})
            assert me.json() == {"sub": DEMO_SERVICE_CLIENT_ID}

            await revoke(auth, token, DEMO_SERVICE_CLIENT_ID)
            refused = await eventually(
                lambda: service.get("/whoami", headers={"Authorization": f"Bearer {token}"}),
                401,
                "a revoked token is refused",
            )
            assert refused.json() == {
                "type": "about:blank",
                "title": "Unauthorized",
                "status": 401,
                "code": "invalid_token",
                "detail": "token has been revoked",
            }

        # auth is gone: once the list is older than allowed, tokens get 503, not a pass
        still = (await service.get("/whoami", headers={"Authorization": f"Bearer {token}"})).json()
        assert still["code"] == "invalid_token"
        feed = app.state.verifier.revocations
        feed.clock = lambda: time.monotonic() + settings.revocation_max_staleness_seconds + 1
        unavailable = await service.get("/whoami", headers={"Authorization": f"Bearer {token}"})
        assert unavailable.status_code == 503
        assert unavailable.headers["retry-after"] == "1"
        assert unavailable.json() == {
            "type": "about:blank",
            "title": "Service Unavailable",
            "status": 503,
            "code": "revocations_unavailable",
            "detail": "token revocations cannot be checked now (auth-service has not answered)",
        }
        assert (await service.get("/readyz")).status_code == 503
        metrics = (await service.get("/metrics")).text
        assert "medmesh_revocation_list_age_seconds " in metrics
    sock.close()
