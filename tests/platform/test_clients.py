"""ServiceClient against a real token endpoint and a real resource server."""

from __future__ import annotations

import asyncio
import base64
import secrets
import socket
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import unquote_plus

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from medmesh.platform.service_client import PeerUnavailable, ServiceClient
from medmesh.platform.testing import serve_app

CLIENT_ID, CLIENT_SECRET = "synthetic-service", "s3cret:with/odd+chars"


@dataclass
class Peer:
    """A token endpoint and a resource server in one app."""

    expires_in: int = 900
    fail_next: int = 0
    tokens: set[str] = field(default_factory=set)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    hits: Counter[str] = field(default_factory=Counter)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/oauth/token", self.token, methods=["POST"]),
                Route("/v1/things", self.things, methods=["GET", "POST", "PUT"]),
            ]
        )

    async def token(self, request: Request) -> JSONResponse:
        # RFC 6749 section 2.3.1: form-urlencoded id and secret, then HTTP Basic.
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        user, _, password = base64.b64decode(encoded).decode().partition(":")
        if (scheme, unquote_plus(user), unquote_plus(password)) != (
            "Basic",
            CLIENT_ID,
            CLIENT_SECRET,
        ):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        form = await request.form()
        self.token_requests.append({k: str(v) for k, v in form.items()})
        value = secrets.token_urlsafe(16)
        self.tokens.add(value)
        return JSONResponse(
            {"access_token": value, "token_type": "Bearer", "expires_in": self.expires_in}
        )

    async def things(self, request: Request) -> JSONResponse:
        self.hits[request.method] += 1
        auth = request.headers.get("authorization", "")
        if auth.removeprefix("Bearer ") not in self.tokens:
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        if self.fail_next > 0:
            self.fail_next -= 1
            return JSONResponse({"error": "unavailable"}, status_code=503)
        return JSONResponse({"method": request.method, "token": auth.removeprefix("Bearer ")})


@pytest.fixture
async def peer() -> AsyncIterator[tuple[Peer, str]]:
    state = Peer()
    async with serve_app(state.app()) as url:
        yield state, url


def client_for(url: str, **kw: float) -> ServiceClient:
    return ServiceClient(
        url,
        token_url=f"{url}/oauth/token",
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        scope="system/Bundle.c",
        audience="medmesh-phi",
        backoff=0.01,
        **kw,  # type: ignore[arg-type]
    )


async def test_token_is_cached_across_calls(peer: tuple[Peer, str]) -> None:
    state, url = peer
    async with client_for(url) as client:
        responses = await asyncio.gather(*(client.get("/v1/things") for _ in range(5)))
        responses.append(await client.put("/v1/things", json={}))

    assert [r.status_code for r in responses] == [200] * 6
    assert len(state.token_requests) == 1
    assert state.token_requests[0] == {
        "grant_type": "client_credentials",
        "scope": "system/Bundle.c",
        "audience": "medmesh-phi",
    }
    assert len({r.json()["token"] for r in responses}) == 1


async def test_token_is_renewed_before_it_expires(peer: tuple[Peer, str]) -> None:
    state, url = peer
    state.expires_in = 1  # renewed at 90 % of its lifetime
    async with client_for(url) as client:
        first = (await client.get("/v1/things")).json()["token"]
        assert (await client.get("/v1/things")).json()["token"] == first
        await asyncio.sleep(0.95)
        second = (await client.get("/v1/things")).json()["token"]

    assert second != first
    assert len(state.token_requests) == 2


async def test_rejected_token_is_renewed_once(peer: tuple[Peer, str]) -> None:
    state, url = peer
    async with client_for(url) as client:
        await client.get("/v1/things")
        state.tokens.clear()  # the peer no longer accepts the cached token
        response = await client.get("/v1/things")

    assert response.status_code == 200
    assert len(state.token_requests) == 2


async def test_get_is_retried_on_503_then_succeeds(peer: tuple[Peer, str]) -> None:
    state, url = peer
    state.fail_next = 2
    async with client_for(url) as client:
        response = await client.get("/v1/things")

    assert response.status_code == 200
    assert state.hits["GET"] == 3


async def test_retries_give_up_and_return_the_last_response(peer: tuple[Peer, str]) -> None:
    state, url = peer
    state.fail_next = 10
    async with client_for(url, retries=2) as client:
        response = await client.get("/v1/things")

    assert response.status_code == 503
    assert state.hits["GET"] == 3


async def test_post_is_not_retried_without_idempotency_key(peer: tuple[Peer, str]) -> None:
    state, url = peer
    state.fail_next = 1
    async with client_for(url) as client:
        response = await client.post("/v1/things", json={"n": 1})

    assert response.status_code == 503
    assert state.hits["POST"] == 1


async def test_post_with_idempotency_key_is_retried(peer: tuple[Peer, str]) -> None:
    state, url = peer
    state.fail_next = 1
    async with client_for(url) as client:
        response = await client.post(
            "/v1/things", json={"n": 1}, headers={"Idempotency-Key": "bundle-42"}
        )

    assert response.status_code == 200
    assert state.hits["POST"] == 2


async def test_wrong_secret_raises_peer_unavailable(peer: tuple[Peer, str]) -> None:
    _, url = peer
    client = ServiceClient(
        url, token_url=f"{url}/oauth/token", client_id=CLIENT_ID, client_secret="wrong"
    )
    async with client:
        with pytest.raises(PeerUnavailable, match="invalid_client"):
            await client.get("/v1/things")


async def test_unreachable_peer_raises_after_retries() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but not listening: connections are refused
        async with ServiceClient(f"http://127.0.0.1:{port}", retries=2, backoff=0.01) as client:
            with pytest.raises(PeerUnavailable) as caught:
                await client.get("/v1/things")
    assert caught.value.status == 503


async def test_client_without_token_url_sends_no_authorization(peer: tuple[Peer, str]) -> None:
    state, url = peer
    async with ServiceClient(url) as client:
        response = await client.get("/v1/things")
    assert response.status_code == 401
    assert state.token_requests == []
