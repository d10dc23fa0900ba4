"""The token endpoint's rate limit per source IP (in memory, and in Redis)."""

from __future__ import annotations

import uuid

import redis.asyncio as redis_asyncio

from medmesh.auth.bootstrap import DEMO_SERVICE_CLIENT_ID
from tests.auth.conftest import AuthFactory


async def _exhaust(factory: AuthFactory, **settings: object) -> None:
    async with factory(token_rate_limit_per_minute=3, **settings) as auth:
        for _ in range(3):
            response = await auth.token()
            assert response.status_code == 200, response.text
            assert response.headers["ratelimit-limit"] == "3"
            assert response.headers["ratelimit-policy"] == '"default";q=3;w=60'
        assert (await auth.token()).status_code == 429
        response = await auth.token()
        assert response.status_code == 429
        assert response.json()["error"] == "slow_down"
        assert int(response.headers["retry-after"]) >= 1
        assert response.headers["ratelimit-remaining"] == "0"
        assert response.headers["ratelimit"].startswith('"default";r=0;t=')
        assert response.headers["cache-control"] == "no-store"
        metrics = (await auth.http.get("/metrics")).text
        assert 'medmesh_auth_token_requests_rejected_total{error="slow_down"} 2.0' in metrics
        # Other endpoints are not limited by the token budget.
        assert (await auth.http.get("/.well-known/jwks.json")).status_code == 200


async def test_token_endpoint_rate_limit_in_memory(auth_factory: AuthFactory) -> None:
    await _exhaust(auth_factory)


async def test_rate_limit_is_per_source_ip(auth_factory: AuthFactory) -> None:
    async with auth_factory(token_rate_limit_per_minute=2, client_ip="198.51.100.1") as auth:
        assert (await auth.token()).status_code == 200
        assert (await auth.token()).status_code == 200
        assert (await auth.token()).status_code == 429
        secrets = auth.secrets
    async with auth_factory(
        token_rate_limit_per_minute=2, client_ip="198.51.100.2", known_secrets=secrets
    ) as other:
        assert (await other.token(DEMO_SERVICE_CLIENT_ID)).status_code == 200


async def test_token_endpoint_rate_limit_in_redis(
    auth_factory: AuthFactory, redis_url: str
) -> None:
    client = redis_asyncio.from_url(redis_url)
    ip = f"192.0.2.{uuid.uuid4().int % 250 + 1}"
    await client.delete(f"medmesh:auth:token:{ip}")
    try:
        await _exhaust(auth_factory, redis_url=redis_url, client_ip=ip)
        assert await client.exists(f"medmesh:auth:token:{ip}") == 1
    finally:
        await client.delete(f"medmesh:auth:token:{ip}")
        await client.aclose()
