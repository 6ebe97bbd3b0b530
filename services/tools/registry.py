"""The tool registry: which tools exist, who may run them, argument checks, execution and idempotent results."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

from services.runtime.arguments import check_arguments
from services.runtime.clock import utcnow
from services.runtime.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from services.runtime.identity import Identity
from services.runtime.tracing import span
from services.tools.execution import ExecutionLimiter, ToolFunction, ToolOutput, run_with_timeout
from services.tools.permissions import Allowance, ToolPolicy
from services.tools.registry_store import IdempotencyRecord, RegistryStore, request_hash
from services.tools.result_cache import MemoryResultCache, ResultCache, cache_key

IDEMPOTENCY_KEY_LIMIT = 256


@dataclass(frozen=True)
class ToolAnnotations:
    """MCP's behaviour hints; the defaults are MCP's own (assume the worst when a tool says nothing)."""

    read_only: bool = False
    idempotent: bool = False
    destructive: bool = True
    open_world: bool = True

    @property
    def cacheable(self) -> bool:
        return self.read_only or self.idempotent


@dataclass(frozen=True)
class ToolDefinition:
    name: str
    description: str
    input_schema: dict[str, Any]
    run: ToolFunction = field(compare=False, repr=False)
    source: str = "builtin"
    server: str = ""
    annotations: ToolAnnotations = ToolAnnotations()
    created: dt.datetime = field(default_factory=lambda: utcnow())
    approved_hash: str = ""  # external tools: the hash an admin approved; built-in tools are approved as code

    @cached_property
    def definition_hash(self) -> str:
        """Pins what callers agreed to: name, description, schema and behaviour hints (computed once: a
        definition is immutable, and an external server's definitions are rebuilt only when it re-lists)."""
        body = json.dumps([self.name, self.description, self.input_schema, _hints(self.annotations)], sort_keys=True)
        return hashlib.sha256(body.encode()).hexdigest()

    @property
    def changed(self) -> bool:
        """The definition differs from the approved one: listed, flagged, not executed."""
        return bool(self.approved_hash) and self.approved_hash != self.definition_hash


def _hints(annotations: ToolAnnotations) -> list[bool]:
    return [annotations.read_only, annotations.idempotent, annotations.destructive, annotations.open_world]


@dataclass(frozen=True)
class Execution:
    output: ToolOutput
    cached: bool
    duration_ms: int

    @property
    def result(self) -> dict[str, Any]:
        return self.output.result


class ToolSource(Protocol):
    """Tools that come from somewhere other than this process's code (external MCP servers)."""

    async def tools(self) -> list[ToolDefinition]: ...


@dataclass(frozen=True)
class ExecutionSettings:
    timeout_seconds: float = 60.0
    concurrency: int = 16
    queue: int = 64
    cache_seconds: float = 60.0


class ToolRegistry:
    """Holds the tools and runs them for a caller; a repeated idempotency key returns the caller's first result."""

    def __init__(
        self,
        builtins: Sequence[ToolDefinition],
        store: RegistryStore,
        policy: ToolPolicy,
        sources: Sequence[ToolSource] = (),
        *,
        cache: ResultCache | None = None,
        settings: ExecutionSettings = ExecutionSettings(),
    ) -> None:
        self._builtins = {tool.name: tool for tool in builtins}
        self._store = store
        self._policy = policy
        self._sources = list(sources)
        self._cache: ResultCache = cache or MemoryResultCache()
        self._settings = settings
        self.limiter = ExecutionLimiter(settings.concurrency, settings.queue)

    @property
    def queue_depth(self) -> int:
        return self.limiter.waiting

    async def _all(self) -> dict[str, ToolDefinition]:
        tools = dict(self._builtins)
        for source in self._sources:
            for tool in await source.tools():
                tools.setdefault(tool.name, tool)
        return tools

    async def list(self, caller: Identity) -> list[ToolDefinition]:
        """The tools `caller` may execute, ordered by name."""
        allowance = await self._policy.allowance(caller)
        tools = await self._all()
        return sorted((t for t in tools.values() if allowance.allows(t.name)), key=lambda t: t.name)

    async def get(self, name: str, caller: Identity | None = None) -> ToolDefinition:
        if not name:
            raise InvalidArgument.field("name", "is required")
        tool = self._builtins.get(name) or (await self._all()).get(name)
        if tool is None:
            raise NotFound(f"tool {name!r} is not registered", reason="TOOL_NOT_FOUND", metadata={"tool": name})
        if caller is not None:
            _require(await self._policy.allowance(caller), caller, name)
        return tool

    async def execute(
        self, name: str, arguments: dict[str, Any], caller: Identity, idempotency_key: str = ""
    ) -> Execution:
        if len(idempotency_key) > IDEMPOTENCY_KEY_LIMIT:
            raise InvalidArgument.field("idempotency_key", f"must be at most {IDEMPOTENCY_KEY_LIMIT} characters")
        allowance = await self._policy.allowance(caller)
        tool = await self.get(name)
        _require(allowance, caller, name)
        if tool.changed:
            raise FailedPrecondition(
                f"tool {name!r} changed its definition since it was approved; an admin must approve it again",
                reason="TOOL_DEFINITION_CHANGED", metadata={"tool": name, "definition_hash": tool.definition_hash},
            )
        check_arguments(tool.input_schema, arguments, "arguments")
        if not idempotency_key:
            return await self._cached_run(tool, arguments, allowance)
        asked = request_hash(name, arguments)
        first = await self._store.recall(caller.principal, idempotency_key)
        if first is not None:
            return _replay(first, asked)
        execution = await self._cached_run(tool, arguments, allowance)
        record = IdempotencyRecord(
            caller.principal, idempotency_key, asked, execution.output.to_json(), execution.duration_ms, utcnow()
        )
        stored = await self._store.remember(record)
        if stored.request_hash != asked or stored.result != record.result:
            return _replay(stored, asked)  # another instance ran the same key first: its result stands
        return execution

    async def _cached_run(self, tool: ToolDefinition, arguments: dict[str, Any], allowance: Allowance) -> Execution:
        key = ""
        if tool.annotations.cacheable and self._settings.cache_seconds > 0:
            key = cache_key(tool.definition_hash, allowance.fingerprint, arguments)
            hit = await self._cache.get(tool.name, key)
            if hit is not None:
                return Execution(ToolOutput.from_json(hit["output"]), True, int(hit["duration_ms"]))
        started = time.perf_counter()
        async with self.limiter.slot():
            with span("tool.execute", **{"mcpmesh.tool": tool.name}):
                output = await run_with_timeout(tool.name, tool.run(arguments), self._settings.timeout_seconds)
        execution = Execution(output, False, int((time.perf_counter() - started) * 1000))
        if key and not output.is_error:
            entry = {"output": output.to_json(), "duration_ms": execution.duration_ms}
            await self._cache.put(tool.name, key, entry, self._settings.cache_seconds)
        return execution

    async def forget_results(self, name: str) -> None:
        """Drops cached results of a tool whose definition changed or was approved again."""
        await self._cache.drop_tool(name)


def _require(allowance: Allowance, caller: Identity, name: str) -> None:
    if not allowance.allows(name):
        who = caller.principal or "this caller"
        raise PermissionDenied(
            f"{who} may not execute tool {name!r}", reason="TOOL_PERMISSION_DENIED", metadata={"tool": name}
        )


def _replay(first: IdempotencyRecord, asked: str) -> Execution:
    if first.request_hash != asked:
        raise FailedPrecondition(
            "idempotency_key was already used by this caller for a different request",
            reason="IDEMPOTENCY_KEY_REUSED",
        )
    return Execution(ToolOutput.from_json(first.result), True, first.duration_ms)


def run_in_thread(function: Callable[[dict[str, Any]], dict[str, Any]]) -> ToolFunction:
    """File walking blocks; keep it off the event loop."""

    async def run(arguments: dict[str, Any]) -> ToolOutput:
        return ToolOutput.of(await asyncio.to_thread(function, arguments))

    return run
