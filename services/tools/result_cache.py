"""The tool result cache: port, in-process adapter and the cache key.

Only tools marked read-only or idempotent are cached, never an error. The key covers the tool, its definition
hash, the caller's permission scope and the canonical JSON of the arguments; entries expire after a set time
and are dropped when the tool's definition changes (drop_tool)."""

from __future__ import annotations

import hashlib
import json
import time
from collections import OrderedDict
from typing import Any, Protocol


class ResultCache(Protocol):
    async def get(self, tool: str, key: str) -> dict[str, Any] | None:
        """The cached output of `tool` under `key`, unless it expired."""

    async def put(self, tool: str, key: str, value: dict[str, Any], ttl_seconds: float) -> None:
        """Stores an output for `ttl_seconds`."""

    async def drop_tool(self, tool: str) -> None:
        """Forgets every entry of `tool` (its definition changed)."""

    async def ping(self) -> None:
        """Raises when the cache cannot be reached."""

    async def close(self) -> None: ...


def cache_key(definition_hash: str, scope: str, arguments: dict[str, Any]) -> str:
    canonical = json.dumps([definition_hash, scope, arguments], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


class MemoryResultCache:
    """In-process LRU with expiry: the default, one per tools process."""

    def __init__(self, max_entries: int = 4096) -> None:
        self._entries: OrderedDict[tuple[str, str], tuple[float, dict[str, Any]]] = OrderedDict()
        self._max = max_entries

    async def get(self, tool: str, key: str) -> dict[str, Any] | None:
        found = self._entries.get((tool, key))
        if found is None:
            return None
        expires, value = found
        if expires <= time.monotonic():
            del self._entries[(tool, key)]
            return None
        self._entries.move_to_end((tool, key))
        return value

    async def put(self, tool: str, key: str, value: dict[str, Any], ttl_seconds: float) -> None:
        self._entries[(tool, key)] = (time.monotonic() + ttl_seconds, value)
        self._entries.move_to_end((tool, key))
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    async def drop_tool(self, tool: str) -> None:
        for entry in [entry for entry in self._entries if entry[0] == tool]:
            del self._entries[entry]

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        self._entries.clear()
