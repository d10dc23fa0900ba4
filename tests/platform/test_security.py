import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import ClassVar

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request
from pydantic import BaseModel
from pydantic_settings import SettingsConfigDict

from medmesh.platform.app import create_service_app
from medmesh.platform.config import ServiceSettings
from medmesh.platform.testing import app_client
from medmesh.platform.web import API_CSP, DOCS_CSP, RateLimiter

LIMIT = 1024


class DemoSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="MEDMESH_DEMO_", extra="ignore")
    service_name: ClassVar[str] = "demo"


class Upload(BaseModel):
    data: str


def demo_app(tmp_path: Path, received: list[str]) -> FastAPI:
    router = APIRouter()

    @router.post("/upload")
    async def upload(body: Upload) -> dict[str, int]:
        received.append(body.data)
        return {"size": len(body.data)}

    @router.post("/raw")
    async def raw(request: Request) -> dict[str, int]:
        received.append("raw-called")
        data = await request.body()
        received.append("raw-read")
        return {"size": len(data)}

    @router.get("/crash")
    async def crash() -> None:
        raise RuntimeError("boom")

    return create_service_app(
        DemoSettings(
            database_url=f"sqlite+medmesh:///{tmp_path / 'demo.db'}", max_body_bytes=LIMIT
        ),
        title="demo",
        version="0",
        description="demo",
        routers=[router],
        verify_tokens=False,
    )


@pytest.fixture
async def client(tmp_path: Path, received: list[str]) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(demo_app(tmp_path, received)) as client:
        yield client


@pytest.fixture
def received() -> list[str]:
    return []


def assert_security_headers(response: httpx.Response, csp: bytes = API_CSP) -> None:
    headers = response.headers
    assert headers["strict-transport-security"].startswith("max-age=")
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["content-security-policy"] == csp.decode()
    assert headers["referrer-policy"] == "no-referrer"
    assert "camera=()" in headers["permissions-policy"]
    assert headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/healthz", 200),
        ("GET", "/readyz", 200),
        ("GET", "/metrics", 200),
        ("GET", "/openapi.json", 200),
        ("GET", "/nowhere", 404),
        ("PUT", "/healthz", 405),
        ("POST", "/upload", 400),
        ("GET", "/crash", 500),
    ],
)
async def test_every_response_carries_the_security_headers(
    client: httpx.AsyncClient, method: str, path: str, status: int
) -> None:
    response = await client.request(method, path)

    assert response.status_code == status
    assert_security_headers(response)


async def test_docs_pages_get_their_own_csp_and_render(client: httpx.AsyncClient) -> None:
    swagger = await client.get("/docs")
    redoc = await client.get("/redoc")

    assert swagger.status_code == 200
    assert "SwaggerUIBundle" in swagger.text
    # Swagger UI's CSP also lists its inline script's hash (tests/platform/test_api_docs.py).
    csp = swagger.headers["content-security-policy"]
    assert csp.startswith("default-src 'self'; script-src 'self' 'sha256-")
    assert_security_headers(swagger, csp=csp.encode())
    assert redoc.status_code == 200
    assert_security_headers(redoc, csp=DOCS_CSP)


async def test_declared_oversized_body_is_refused_before_the_handler_runs(
    client: httpx.AsyncClient, received: list[str]
) -> None:
    response = await client.post("/upload", json={"data": "x" * (LIMIT + 1)})
    raw = await client.post("/raw", content=b"x" * (LIMIT + 1))

    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "payload_too_large"
    assert_security_headers(response)
    assert raw.status_code == 413
    assert received == []


async def test_streamed_oversized_body_is_refused(
    client: httpx.AsyncClient, received: list[str]
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"data": "'
        for _ in range(8):
            yield b"x" * 256
        yield b'"}'

    response = await client.post(
        "/upload", content=chunks(), headers={"content-type": "application/json"}
    )

    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "payload_too_large"
    assert received == []


async def test_streamed_oversized_body_read_by_the_endpoint_is_refused(
    client: httpx.AsyncClient, received: list[str]
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(8):
            yield b"x" * 256

    response = await client.post("/raw", content=chunks())

    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert "raw-read" not in received


async def test_body_at_the_limit_is_accepted(
    client: httpx.AsyncClient, received: list[str]
) -> None:
    data = "x" * (LIMIT - len('{"data":""}'))
    response = await client.post(
        "/upload", content=f'{{"data":"{data}"}}', headers={"content-type": "application/json"}
    )

    assert response.status_code == 200
    assert received == [data]


async def test_invalid_content_length_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post("/raw", content=b"abc", headers={"content-length": "-1"})

    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_rate_limiter_allows_a_burst_then_refuses() -> None:
    clock = FakeClock()
    limiter = RateLimiter(3, 60, clock=clock)

    decisions = [limiter.hit_local("client-a") for _ in range(4)]

    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]
    refused = decisions[-1]
    assert refused.retry_after == 20  # one token every 60/3 seconds
    headers = refused.headers(60)
    assert headers["Retry-After"] == "20"
    assert headers["RateLimit-Policy"] == '"default";q=3;w=60'
    assert headers["RateLimit"] == '"default";r=0;t=60'
    assert "Retry-After" not in decisions[0].headers(60)
    # another key has its own budget
    assert limiter.hit_local("client-b").allowed


def test_rate_limiter_refills_over_time_up_to_the_limit() -> None:
    clock = FakeClock()
    limiter = RateLimiter(3, 60, clock=clock)
    for _ in range(3):
        limiter.hit_local("k")

    clock.now += 19.9
    assert not limiter.hit_local("k").allowed
    clock.now += 0.1
    assert limiter.hit_local("k").allowed
    assert not limiter.hit_local("k").allowed

    clock.now += 3600  # a long pause refills to the limit, not beyond
    assert [limiter.hit_local("k").allowed for _ in range(4)] == [True, True, True, False]


async def test_rate_limiter_in_memory_through_the_async_api() -> None:
    limiter = RateLimiter(2, 1, clock=FakeClock())

    results = [(await limiter.hit("k")).allowed for _ in range(3)]
    await limiter.aclose()

    assert results == [True, True, False]


def test_rate_limiter_refuses_a_nonsense_configuration() -> None:
    with pytest.raises(ValueError, match="positive"):
        RateLimiter(0, 60)


async def test_redis_rate_limiters_share_one_budget(redis_url: str) -> None:
    prefix = f"medmesh:test:{uuid.uuid4().hex}"
    first = RateLimiter(4, 60, redis_url=redis_url, prefix=prefix)
    second = RateLimiter(4, 60, redis_url=redis_url, prefix=prefix)
    try:
        results = [
            await first.hit("client"),
            await second.hit("client"),
            await first.hit("client"),
            await second.hit("client"),
            await first.hit("client"),
            await second.hit("client"),
        ]
        other = await second.hit("other-client")
    finally:
        await first.aclose()
        await second.aclose()

    assert [r.allowed for r in results] == [True, True, True, True, False, False]
    assert [r.remaining for r in results[:4]] == [3, 2, 1, 0]
    assert results[-1].retry_after >= 1
    assert results[-1].headers(60)["Retry-After"] == str(results[-1].retry_after)
    assert other.allowed
