"""Execution engine: result cache rules, time limit, concurrency limit with a bounded queue, changed definitions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from services.runtime.errors import FailedPrecondition, ResourceExhausted
from services.runtime.identity import Identity
from services.runtime.state import SqliteDatabase
from services.tools.execution import ToolOutput, ToolTimedOut
from services.tools.permissions import ToolPolicy
from services.tools.permissions_sqlite import SCHEMA as PERMISSIONS_SCHEMA
from services.tools.permissions_sqlite import SqlitePermissionStore
from services.tools.registry import ExecutionSettings, ToolAnnotations, ToolDefinition, ToolRegistry
from services.tools.registry_store_sqlite import SCHEMA as REGISTRY_SCHEMA
from services.tools.registry_store_sqlite import SqliteRegistryStore

OPERATOR = Identity("key:op", "operator")
SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}}
READ_ONLY = ToolAnnotations(read_only=True, idempotent=True, destructive=False, open_world=False)


class Tool:
    def __init__(self, *, fail: bool = False, delay: float = 0.0) -> None:
        self.calls = 0
        self.fail = fail
        self.delay = delay
        self.release = asyncio.Event()
        self.release.set()

    async def __call__(self, arguments: dict[str, Any]) -> ToolOutput:
        self.calls += 1
        await self.release.wait()
        await asyncio.sleep(self.delay)
        if self.fail:
            return ToolOutput([{"type": "text", "text": "boom"}], None, True)
        return ToolOutput.of({"n": arguments.get("n"), "call": self.calls})


@pytest.fixture()
async def parts(tmp_path: Path) -> AsyncIterator[tuple[SqliteDatabase, SqlitePermissionStore, SqliteRegistryStore]]:
    database = SqliteDatabase(tmp_path / "tools.db", PERMISSIONS_SCHEMA + REGISTRY_SCHEMA)
    yield database, SqlitePermissionStore(database), SqliteRegistryStore(database)
    database.close()


def _registry(parts: Any, tools: list[ToolDefinition], **settings: Any) -> ToolRegistry:
    _, permissions, store = parts
    return ToolRegistry(tools, store, ToolPolicy(permissions), settings=ExecutionSettings(**settings))


async def test_read_only_results_are_cached_per_arguments(parts: Any) -> None:
    tool = Tool()
    registry = _registry(parts, [ToolDefinition("ro", "", SCHEMA, tool, annotations=READ_ONLY)])
    first = await registry.execute("ro", {"n": 1}, OPERATOR)
    again = await registry.execute("ro", {"n": 1}, OPERATOR)
    other = await registry.execute("ro", {"n": 2}, OPERATOR)
    assert (first.cached, again.cached, other.cached) == (False, True, False)
    assert again.result == first.result and tool.calls == 2


async def test_other_tools_and_errors_are_never_cached(parts: Any) -> None:
    plain, failing = Tool(), Tool(fail=True)
    registry = _registry(parts, [
        ToolDefinition("plain", "", SCHEMA, plain),
        ToolDefinition("failing", "", SCHEMA, failing, annotations=READ_ONLY),
    ])
    for _ in range(2):
        assert not (await registry.execute("plain", {}, OPERATOR)).cached
        failed = await registry.execute("failing", {}, OPERATOR)
        assert failed.output.is_error and not failed.cached
    assert (plain.calls, failing.calls) == (2, 2)


async def test_cache_is_per_permission_scope(parts: Any) -> None:
    tool = Tool()
    registry = _registry(parts, [ToolDefinition("ro", "", SCHEMA, tool, annotations=READ_ONLY)])
    await registry.execute("ro", {}, OPERATOR)
    scoped = await registry.execute("ro", {}, Identity("key:k2", "operator", ("r*",)))
    assert not scoped.cached and tool.calls == 2
    # An admin may run everything, as the unnarrowed operator may: the same scope, so the same entry.
    assert (await registry.execute("ro", {}, Identity("key:k3", "admin"))).cached is True


async def test_forgetting_a_tool_drops_its_results(parts: Any) -> None:
    tool = Tool()
    registry = _registry(parts, [ToolDefinition("ro", "", SCHEMA, tool, annotations=READ_ONLY)])
    await registry.execute("ro", {}, OPERATOR)
    await registry.forget_results("ro")
    assert not (await registry.execute("ro", {}, OPERATOR)).cached


async def test_time_limit(parts: Any) -> None:
    registry = _registry(parts, [ToolDefinition("slow", "", SCHEMA, Tool(delay=5))], timeout_seconds=0.2)
    with pytest.raises(ToolTimedOut) as timed_out:
        await registry.execute("slow", {}, OPERATOR)
    assert timed_out.value.code == "ABORTED" and timed_out.value.reason == "TOOL_TIMEOUT"


async def test_concurrency_limit_and_bounded_queue(parts: Any) -> None:
    tool = Tool()
    tool.release.clear()
    registry = _registry(parts, [ToolDefinition("t", "", SCHEMA, tool)], concurrency=1, queue=1)
    running = asyncio.create_task(registry.execute("t", {"n": 1}, OPERATOR))
    waiting = asyncio.create_task(registry.execute("t", {"n": 2}, OPERATOR))
    for _ in range(100):
        if registry.queue_depth == 1 and tool.calls == 1:
            break
        await asyncio.sleep(0.01)
    assert registry.queue_depth == 1 and registry.limiter.running == 1
    with pytest.raises(ResourceExhausted) as full:
        await registry.execute("t", {"n": 3}, OPERATOR)
    assert full.value.reason == "TOOL_QUEUE_FULL"
    tool.release.set()
    assert (await running).result["n"] == 1 and (await waiting).result["n"] == 2
    assert registry.queue_depth == 0


async def test_a_cancelled_caller_frees_its_slot(parts: Any) -> None:
    tool = Tool()
    tool.release.clear()
    registry = _registry(parts, [ToolDefinition("t", "", SCHEMA, tool)], concurrency=1, queue=4)
    call = asyncio.create_task(registry.execute("t", {}, OPERATOR))
    await asyncio.sleep(0.05)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert registry.limiter.running == 0
    tool.release.set()
    assert not (await registry.execute("t", {}, OPERATOR)).cached


async def test_changed_definition_is_listed_but_not_executed(parts: Any) -> None:
    tool = Tool()
    changed = ToolDefinition("ext.t", "now different", SCHEMA, tool, source="external_mcp", approved_hash="old-hash")
    registry = _registry(parts, [changed])
    listed = await registry.list(OPERATOR)
    assert [t.name for t in listed] == ["ext.t"] and listed[0].changed
    with pytest.raises(FailedPrecondition) as refused:
        await registry.execute("ext.t", {}, OPERATOR)
    assert refused.value.reason == "TOOL_DEFINITION_CHANGED" and tool.calls == 0
