"""Token buckets per identity: the port, an in-process adapter, and a Redis adapter that several instances share."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from services.runtime.config import Config


class Buckets(Protocol):
    """Takes one token from `key`'s bucket (`rate` per second, at most `burst`): 0.0 when one was taken, else
    the seconds until one will be."""

    async def take(self, key: str, rate: float, burst: int) -> float: ...

    async def close(self) -> None: ...


@dataclass
class _Bucket:
    tokens: float
    updated: float


class MemoryBuckets:
    """One process's own budget (the default: each gateway instance counts for itself)."""

    def __init__(self) -> None:
        self._buckets: dict[str, _Bucket] = {}

    async def take(self, key: str, rate: float, burst: int) -> float:
        return self.take_now(key, rate, burst)

    def take_now(self, key: str, rate: float, burst: int) -> float:
        if len(self._buckets) > 100_000:
            self._buckets.clear()  # bounded: many short-lived identities must not grow it forever
        now = time.monotonic()
        bucket = self._buckets.setdefault(key, _Bucket(burst, now))
        bucket.tokens = min(burst, bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        if bucket.tokens < 1:
            return (1 - bucket.tokens) / rate if rate > 0 else 60.0
        bucket.tokens -= 1
        return 0.0

    async def close(self) -> None:
        return None


# Atomic in Redis, on Redis's own clock, so instances with skewed clocks share one budget fairly.
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'updated')
local tokens = tonumber(state[1]) or burst
local updated = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - updated) * rate)
local wait = 0
if tokens < 1 then
  if rate > 0 then wait = (1 - tokens) / rate else wait = 60 end
else
  tokens = tokens - 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'updated', tostring(now))
local ttl = 60
if rate > 0 then ttl = math.ceil(burst / rate) + 1 end
redis.call('EXPIRE', KEYS[1], ttl)
return tostring(wait)
"""


class RedisBuckets:
    """Buckets in Redis (`redis://HOST:PORT/DB`): every gateway instance draws from the same budget."""

    def __init__(self, url: str, prefix: str = "mcpmesh:rate:") -> None:
        import redis.asyncio as redis

        self._client = redis.from_url(url)
        self._prefix = prefix
        self._take = self._client.register_script(_TAKE)

    async def take(self, key: str, rate: float, burst: int) -> float:
        wait = await self._take(keys=[self._prefix + key], args=[rate, burst])
        return float(wait)

    async def close(self) -> None:
        await self._client.aclose()


def open_buckets(url: str) -> Buckets:
    """Empty or `memory`: in-process; `redis://...`: shared. Anything else stops the start-up."""
    if url in ("", "memory"):
        return MemoryBuckets()
    if url.startswith(("redis://", "rediss://")):
        return RedisBuckets(url)
    raise SystemExit(f"gateway: no rate-limit store for {url!r} (have: memory, redis://)")


class RateLimiter:
    """A token bucket per identity; `per_role` overrides the default (rate, burst) for a role's callers. The
    buckets are in-process by default, or in Redis so that several gateway instances share one budget."""

    def __init__(
        self, per_second: float, burst: int, per_role: Mapping[str, tuple[float, int]] | None = None,
        buckets: Buckets | None = None,
    ) -> None:
        self._default = (per_second, burst)
        self._per_role = dict(per_role or {})
        self.buckets = buckets or MemoryBuckets()

    async def wait_time(self, key: str, role: str = "") -> float:
        """0.0 when a call is allowed now (and takes a token), else the seconds until one will be."""
        rate, burst = self._per_role.get(role, self._default)
        return await self.buckets.take(key, rate, burst)

    @classmethod
    def from_config(cls, config: Config) -> RateLimiter:
        """The budgets of MCPMESH_RATE_LIMIT, _BURST and _LIMITS, in the store of MCPMESH_RATE_LIMIT_URL."""
        per_role = {role: (rate, burst) for role, rate, burst in config.rate_limits_per_role}
        return cls(config.rate_limit_per_second, config.rate_limit_burst, per_role, open_buckets(config.rate_limit_url))

    async def allow(self, key: str, role: str = "") -> bool:
        return await self.wait_time(key, role) == 0.0
