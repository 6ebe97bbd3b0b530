"""Conformance suite of the rate-limit bucket port: in-process, and Redis (a real redis-server, started once)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from services.runtime.rate_limits import Buckets, MemoryBuckets, RedisBuckets, open_buckets


@pytest.fixture(params=["memory", "redis"])
async def buckets(request: pytest.FixtureRequest) -> AsyncIterator[Buckets]:
    made: Buckets = MemoryBuckets() if request.param == "memory" else RedisBuckets(request.getfixturevalue("redis_url"))
    yield made
    await made.close()


def key() -> str:
    return f"key:{uuid.uuid4().hex}"


async def test_the_burst_then_a_wait(buckets: Buckets) -> None:
    who = key()
    assert [await buckets.take(who, 2.0, 3) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = await buckets.take(who, 2.0, 3)
    assert 0.0 < wait <= 0.5 + 0.01


async def test_identities_have_their_own_buckets(buckets: Buckets) -> None:
    first, second = key(), key()
    assert await buckets.take(first, 0.0, 1) == 0.0
    assert await buckets.take(first, 0.0, 1) > 0.0
    assert await buckets.take(second, 0.0, 1) == 0.0


async def test_tokens_come_back_at_the_rate(buckets: Buckets) -> None:
    who = key()
    assert await buckets.take(who, 50.0, 1) == 0.0
    assert await buckets.take(who, 50.0, 1) > 0.0
    await asyncio.sleep(0.05)  # 50/s: one token back after 20 ms
    assert await buckets.take(who, 50.0, 1) == 0.0


async def test_redis_buckets_are_shared_by_instances(redis_url: str) -> None:
    one, two = RedisBuckets(redis_url), RedisBuckets(redis_url)
    who = key()
    try:
        assert await one.take(who, 0.0, 2) == 0.0
        assert await two.take(who, 0.0, 2) == 0.0
        assert await one.take(who, 0.0, 2) > 0.0 and await two.take(who, 0.0, 2) > 0.0
    finally:
        await one.close()
        await two.close()


def test_store_urls() -> None:
    assert isinstance(open_buckets(""), MemoryBuckets) and isinstance(open_buckets("memory"), MemoryBuckets)
    with pytest.raises(SystemExit):
        open_buckets("memcached://x")
