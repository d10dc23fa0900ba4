"""Rate limiting: a token bucket per key, in memory or in Redis (when a Redis URL is set, so
replicas share one budget), and the client address requests are counted by."""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request


@dataclass(frozen=True, slots=True)
class RateDecision:
    """The outcome of one rate-limit check, with what the ``RateLimit`` headers need."""

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int
    retry_after: int

    def headers(self, window_seconds: int) -> dict[str, str]:
        """``RateLimit``/``RateLimit-Policy`` (IETF draft) and ``Retry-After`` when refused."""
        out = {
            "RateLimit-Policy": f'"default";q={self.limit};w={window_seconds}',
            "RateLimit": f'"default";r={self.remaining};t={self.reset_seconds}',
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_seconds),
        }
        if not self.allowed:
            out["Retry-After"] = str(self.retry_after)
        return out


_REDIS_BUCKET = """
local key = KEYS[1]
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local state = redis.call('HMGET', key, 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil then tokens = capacity; ts = now end
tokens = math.min(capacity, tokens + (now - ts) * rate)
local allowed = 0
if tokens >= cost then tokens = tokens - cost; allowed = 1 end
redis.call('HSET', key, 'tokens', tokens, 'ts', now)
redis.call('PEXPIRE', key, math.ceil(capacity / rate * 1000) + 1000)
return {allowed, tostring(tokens)}
"""


class RateLimiter:
    """A token bucket per key: ``limit`` requests per ``window_seconds``, bursts up to ``limit``.

    In memory (bounded LRU of buckets) unless ``redis_url`` is given, in which case the
    bucket lives in Redis and is updated atomically by a Lua script, so every replica
    shares one budget.
    """

    def __init__(
        self,
        limit: int,
        window_seconds: int = 60,
        *,
        redis_url: str = "",
        prefix: str = "medmesh:rl",
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit <= 0 or window_seconds <= 0:
            raise ValueError("limit and window must be positive")
        self.limit = limit
        self.window_seconds = window_seconds
        self.rate = limit / window_seconds
        self.prefix = prefix
        self.max_keys = max_keys
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._redis: Any = None
        self._script: Any = None
        if redis_url:
            import redis.asyncio as redis_asyncio

            self._redis = redis_asyncio.from_url(redis_url)
            self._script = self._redis.register_script(_REDIS_BUCKET)

    def _decision(self, allowed: bool, tokens: float) -> RateDecision:
        remaining = max(0, math.floor(tokens))
        missing = self.limit - tokens
        reset = max(0, math.ceil(missing / self.rate))
        retry_after = 0 if allowed else max(1, math.ceil((1 - tokens) / self.rate))
        return RateDecision(allowed, self.limit, remaining, reset, retry_after)

    def hit_local(self, key: str, cost: float = 1.0) -> RateDecision:
        """Take ``cost`` tokens from ``key``'s in-memory bucket."""
        now = self.clock()
        tokens, ts = self._buckets.pop(key, (float(self.limit), now))
        tokens = min(float(self.limit), tokens + (now - ts) * self.rate)
        allowed = tokens >= cost
        if allowed:
            tokens -= cost
        self._buckets[key] = (tokens, now)
        if len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return self._decision(allowed, tokens)

    async def hit(self, key: str, cost: float = 1.0) -> RateDecision:
        """Take ``cost`` tokens from ``key``'s bucket (Redis when configured)."""
        if self._script is None:
            return self.hit_local(key, cost)
        allowed, tokens = await self._script(
            keys=[f"{self.prefix}:{key}"], args=[self.limit, self.rate, time.time(), cost]
        )
        return self._decision(bool(int(allowed)), float(tokens))

    async def aclose(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()


def client_ip(request: Request) -> str:
    """The peer address (proxies are trusted only through uvicorn's --forwarded-allow-ips)."""
    return request.client.host if request.client else "unknown"
