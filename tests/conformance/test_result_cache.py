"""Conformance suite of the tool result cache port: in-process and Redis (a real redis-server, started once)."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from services.tools.result_cache import MemoryResultCache, ResultCache, cache_key
from services.tools.result_cache_redis import RedisResultCache


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server (Debian package, installed by .ci/run) on a free loopback port for the whole session."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server is not installed: .ci/run installs the Debian package"
    port = _free_port()
    folder = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(folder)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            pytest.fail("redis-server did not start within 10 s")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)


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
