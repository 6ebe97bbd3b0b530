"""Conformance suite of the tool result cache port: in-process and Redis (a real redis-server, started once)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.tools.result_cache import MemoryResultCache, ResultCache, cache_key
from services.tools.result_cache_redis import RedisResultCache


@pytest.fixture(params=["memory", "redis"])
async def cache(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ResultCache]:
    made: ResultCache
    if request.param == "memory":
        made = MemoryResultCache()
    else:
        made = RedisResultCache(request.getfixturevalue("redis_url"), prefix=f"test:{tmp_path.name}")
    yield made
    await made.close()


async def test_put_then_get(cache: ResultCache) -> None:
    assert await cache.get("fs", "k") is None
    await cache.put("fs", "k", {"output": {"n": 1}}, 30)
    assert await cache.get("fs", "k") == {"output": {"n": 1}}
    assert await cache.get("other", "k") is None


async def test_entries_expire(cache: ResultCache) -> None:
    await cache.put("fs", "short", {"v": 1}, 0.2)
    assert await cache.get("fs", "short") == {"v": 1}
    await asyncio.sleep(0.4)
    assert await cache.get("fs", "short") is None


async def test_drop_tool_forgets_only_that_tool(cache: ResultCache) -> None:
    for key in ("a", "b", "c"):
        await cache.put("time.now", key, {"v": key}, 30)
    await cache.put("time.nowhere", "a", {"v": "kept"}, 30)
    await cache.drop_tool("time.now")
    assert [await cache.get("time.now", key) for key in ("a", "b", "c")] == [None, None, None]
    assert await cache.get("time.nowhere", "a") == {"v": "kept"}


async def test_replacing_an_entry(cache: ResultCache) -> None:
    await cache.put("fs", "k", {"v": 1}, 30)
    await cache.put("fs", "k", {"v": 2}, 30)
    assert await cache.get("fs", "k") == {"v": 2}


async def test_ping(cache: ResultCache) -> None:
    await cache.ping()


def test_key_covers_definition_scope_and_canonical_arguments() -> None:
    base = cache_key("h1", "scope", {"a": 1, "b": 2})
    assert base == cache_key("h1", "scope", {"b": 2, "a": 1})
    assert base != cache_key("h2", "scope", {"a": 1, "b": 2})
    assert base != cache_key("h1", "other", {"a": 1, "b": 2})
    assert base != cache_key("h1", "scope", {"a": 1, "b": 3})
