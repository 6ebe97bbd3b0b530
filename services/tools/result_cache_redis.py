"""The Redis adapter of the tool result cache (ElastiCache in production): entries expire by Redis TTL."""

from __future__ import annotations

import json
from typing import Any

import redis.asyncio as redis


class RedisResultCache:
    """Keys are `<prefix>:<tool>:<key>`; dropping a tool deletes its keys with SCAN (no KEYS on a live server)."""

    def __init__(self, url: str, prefix: str = "mcpmesh:tool-cache") -> None:
        self._redis = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self._prefix = prefix

    def _name(self, tool: str, key: str) -> str:
        return f"{self._prefix}:{tool}:{key}"

    async def get(self, tool: str, key: str) -> dict[str, Any] | None:
        raw = await self._redis.get(self._name(tool, key))
        return None if raw is None else dict(json.loads(raw))

    async def put(self, tool: str, key: str, value: dict[str, Any], ttl_seconds: float) -> None:
        await self._redis.set(self._name(tool, key), json.dumps(value), px=max(int(ttl_seconds * 1000), 1))

    async def drop_tool(self, tool: str) -> None:
        # Tool names hold no glob characters (the registry checks them), but escape anyway.
        pattern = self._name(tool.replace("*", r"\*").replace("?", r"\?").replace("[", r"\["), "*")
        batch: list[Any] = []
        async for name in self._redis.scan_iter(match=pattern, count=500):
            batch.append(name)
            if len(batch) >= 500:
                await self._redis.delete(*batch)
                batch = []
        if batch:
            await self._redis.delete(*batch)

    async def ping(self) -> None:
        await self._redis.ping()

    async def close(self) -> None:
        await self._redis.aclose()
