"""Clients whose keys live at a ``jwks_uri``: read over HTTP, cached, read again for a new kid,
bounded in size; a real HTTP server on the loopback interface serves them."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
import pytest

from medmesh.auth.clients.jwks import (
    MAX_JWKS_BYTES,
    REFETCH_SECONDS,
    ClientKeySource,
    JWKSUnavailable,
)
from tests.auth.clients.test_assertions import BackendKey, assert_refused, register, token_with
from tests.auth.conftest import AuthHarness


@dataclass
class KeyServer:
    """What the backend publishes at its jwks_uri, and how often it was asked."""

    body: bytes = b'{"keys": []}'
    status: int = 200
    requests: int = 0
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def publish(self, *keys: BackendKey) -> None:
        self.body = orjson.dumps({"keys": [k.public_jwk() for k in keys]})


@pytest.fixture
def key_server() -> Iterator[KeyServer]:
    served = KeyServer()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            with served.lock:
                served.requests += 1
            self.send_response(served.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(served.body)))
            self.end_headers()
            self.wfile.write(served.body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    served.url = f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class SteppedClock:
    """``time.monotonic`` for the key cache, moved on by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def cache_clock(monkeypatch: pytest.MonkeyPatch) -> SteppedClock:
    clock = SteppedClock()
    monkeypatch.setattr("medmesh.auth.clients.jwks.time", clock)
    return clock


async def test_keys_are_read_from_the_jwks_uri_once_and_cached(
    auth: AuthHarness, key_server: KeyServer, cache_clock: SteppedClock
) -> None:
    key = BackendKey.rsa()
    key_server.publish(key)
    client_id = await register(auth, jwks=None, jwks_uri=key_server.url)
    for _ in range(3):
        response = await token_with(auth, key.assertion(client_id))
        assert response.status_code == 200, response.text
    assert key_server.requests == 1


async def test_a_rotated_key_is_fetched_when_its_kid_first_appears(
    auth: AuthHarness, key_server: KeyServer, cache_clock: SteppedClock
) -> None:
    old, new = BackendKey.ec(), BackendKey.ec()
    key_server.publish(old)
    client_id = await register(auth, jwks=None, jwks_uri=key_server.url)
    assert (await token_with(auth, old.assertion(client_id))).status_code == 200
    key_server.publish(old, new)
    # Within REFETCH_SECONDS of the last read an unknown kid does not make the server read again.
    too_soon = await token_with(auth, new.assertion(client_id))
    await assert_refused(
        auth, too_soon, "client_assertion kid names no key of the client", "unknown_kid"
    )
    assert key_server.requests == 1
    cache_clock.now += REFETCH_SECONDS + 1
    rotated = await token_with(auth, new.assertion(client_id))
    assert rotated.status_code == 200, rotated.text
    assert key_server.requests == 2


async def test_an_unreadable_jwks_uri_refuses_the_client(
    auth: AuthHarness, key_server: KeyServer, cache_clock: SteppedClock
) -> None:
    key = BackendKey.rsa()
    client_id = await register(auth, jwks=None, jwks_uri=key_server.url)
    key_server.status = 404
    response = await token_with(auth, key.assertion(client_id))
    await assert_refused(
        auth,
        response,
        "the client's JWK Set is unavailable: jwks_uri answered 404",
        "jwks_unavailable",
    )


async def test_a_jwks_uri_larger_than_the_bound_is_refused(
    auth: AuthHarness, key_server: KeyServer, cache_clock: SteppedClock
) -> None:
    key = BackendKey.rsa()
    client_id = await register(auth, jwks=None, jwks_uri=key_server.url)
    key_server.body = b'{"keys": [], "padding": "' + b"x" * MAX_JWKS_BYTES + b'"}'
    response = await token_with(auth, key.assertion(client_id))
    await assert_refused(
        auth,
        response,
        f"the client's JWK Set is unavailable: jwks_uri holds more than {MAX_JWKS_BYTES} bytes",
        "jwks_unavailable",
    )


async def test_concurrent_requests_read_a_jwks_uri_once(key_server: KeyServer) -> None:
    key = BackendKey.ec()
    key_server.publish(key)
    source = ClientKeySource()
    found = await asyncio.gather(*(source.keys(None, key_server.url, key.kid) for _ in range(10)))
    assert all(set(keys) == {key.kid} for keys in found)
    assert key_server.requests == 1


@pytest.mark.parametrize(
    ("body", "reason"),
    [(b"not json", "jwks_uri is not JSON"), (b"[1, 2]", "jwks_uri is not a JWK Set")],
)
async def test_a_jwks_uri_serving_something_else_is_unavailable(
    key_server: KeyServer, body: bytes, reason: str
) -> None:
    key_server.body = body
    with pytest.raises(JWKSUnavailable) as raised:
        await ClientKeySource().keys(None, key_server.url, "k1")
    assert raised.value.reason == reason
