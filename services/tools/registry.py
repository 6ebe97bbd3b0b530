"""The tool registry: which tools exist, who may run them, argument checks, execution and idempotent results."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from services.runtime.arguments import check_arguments
from services.runtime.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from services.runtime.identity import Identity
from services.tools.permissions import Allowance, ToolPolicy
from services.tools.registry_store import IdempotencyRecord, RegistryStore, request_hash

ToolFunction = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
IDEMPOTENCY_KEY_LIMIT = 256


@dataclass(frozen=True)
class ToolAnnotations:
    """MCP's behaviour hints; the defaults are MCP's own (assume the worst when a tool says nothing)."""

    read_only: bool = False
    idempotent: bool = False
    destructive: bool = True
    open_world: bool = True


@dataclass(frozen=True)
class ToolDefinition:
    name: str
    description: str
    input_schema: dict[str, Any]
    run: ToolFunction = field(compare=False, repr=False)
    source: str = "builtin"
    server: str = ""
    annotations: ToolAnnotations = ToolAnnotations()
    created: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    @property
    def definition_hash(self) -> str:
        """Pins what callers agreed to: name, description, schema and behaviour hints."""
        body = json.dumps([self.name, self.description, self.input_schema, _hints(self.annotations)], sort_keys=True)
        return hashlib.sha256(body.encode()).hexdigest()


def _hints(annotations: ToolAnnotations) -> list[bool]:
    return [annotations.read_only, annotations.idempotent, annotations.destructive, annotations.open_world]


@dataclass(frozen=True)
class Execution:
    result: dict[str, Any]
    cached: bool
    duration_ms: int


class ToolSource(Protocol):
    """Tools that come from somewhere other than this process's code (external MCP servers)."""

    async def tools(self) -> list[ToolDefinition]: ...


class ToolRegistry:
    """Holds the tools and runs them for a caller; a repeated idempotency key returns the caller's first result."""

    def __init__(
        self,
        builtins: Sequence[ToolDefinition],
        store: RegistryStore,
        policy: ToolPolicy,
        sources: Sequence[ToolSource] = (),
    ) -> None:
        self._builtins = {tool.name: tool for tool in builtins}
        self._store = store
        self._policy = policy
        self._sources = list(sources)
        self.active_executions = 0

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

    async def unregister(self, name: str) -> None:
        tool = await self.get(name)
        if tool.source == "builtin":
            raise FailedPrecondition(f"tool {name!r} is built in and cannot be unregistered", reason="TOOL_IS_BUILTIN")
        if not await self._store.delete("tool", name):
            raise NotFound(f"tool {name!r} is not registered", reason="TOOL_NOT_FOUND", metadata={"tool": name})

    async def execute(
        self, name: str, arguments: dict[str, Any], caller: Identity, idempotency_key: str = ""
    ) -> Execution:
        if len(idempotency_key) > IDEMPOTENCY_KEY_LIMIT:
            raise InvalidArgument.field("idempotency_key", f"must be at most {IDEMPOTENCY_KEY_LIMIT} characters")
        tool = await self.get(name, caller)
        check_arguments(tool.input_schema, arguments, "arguments")
        asked = request_hash(name, arguments)
        if idempotency_key:
            first = await self._store.recall(caller.principal, idempotency_key)
            if first is not None:
                return _replay(first, asked)
        started = time.perf_counter()
        self.active_executions += 1
        try:
            result = await tool.run(arguments)
        finally:
            self.active_executions -= 1
        execution = Execution(result, False, int((time.perf_counter() - started) * 1000))
        if idempotency_key:
            record = IdempotencyRecord(
                caller.principal, idempotency_key, asked, result, execution.duration_ms, dt.datetime.now(dt.UTC)
            )
            stored = await self._store.remember(record)
            if stored.request_hash != asked or stored.result != result:
                return _replay(stored, asked)  # another instance ran the same key first: its result stands
        return execution


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
    return Execution(first.result, True, first.duration_ms)


def run_in_thread(function: Callable[[dict[str, Any]], dict[str, Any]]) -> ToolFunction:
    """File walking blocks; keep it off the event loop."""

    async def run(arguments: dict[str, Any]) -> dict[str, Any]:
        return await asyncio.to_thread(function, arguments)

    return run
