"""The tool registry: built-in tools, argument checks, execution and idempotent results."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from services.runtime.arguments import check_arguments
from services.runtime.errors import FailedPrecondition, InvalidArgument, NotFound

ToolFunction = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class ToolDefinition:
    name: str
    description: str
    input_schema: dict[str, Any]
    run: ToolFunction = field(compare=False, repr=False)
    source: str = "builtin"
    created: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    @property
    def definition_hash(self) -> str:
        """Pins what callers agreed to: name, description and schema."""
        body = json.dumps([self.name, self.description, self.input_schema], sort_keys=True)
        return hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True)
class Execution:
    result: dict[str, Any]
    cached: bool
    duration_ms: int


class ToolRegistry:
    """Holds the tools and runs them; a repeated idempotency key returns the first result."""

    def __init__(self, tools: list[ToolDefinition], *, remembered_results: int = 1024) -> None:
        self._tools = {tool.name: tool for tool in tools}
        self._results: OrderedDict[str, Execution] = OrderedDict()
        self._remembered = remembered_results
        self.active_executions = 0

    def list(self) -> list[ToolDefinition]:
        return sorted(self._tools.values(), key=lambda t: t.name)

    def get(self, name: str) -> ToolDefinition:
        if not name:
            raise InvalidArgument.field("name", "is required")
        tool = self._tools.get(name)
        if tool is None:
            raise NotFound(f"tool {name!r} is not registered", reason="TOOL_NOT_FOUND", metadata={"tool": name})
        return tool

    def unregister(self, name: str) -> None:
        tool = self.get(name)
        if tool.source == "builtin":
            raise FailedPrecondition(f"tool {name!r} is built in and cannot be unregistered", reason="TOOL_IS_BUILTIN")
        del self._tools[name]

    async def execute(self, name: str, arguments: dict[str, Any], idempotency_key: str = "") -> Execution:
        tool = self.get(name)
        check_arguments(tool.input_schema, arguments, "arguments")
        cache_key = f"{name}\x00{idempotency_key}"
        if idempotency_key and cache_key in self._results:
            first = self._results[cache_key]
            return Execution(first.result, True, first.duration_ms)
        started = time.perf_counter()
        self.active_executions += 1
        try:
            result = await tool.run(arguments)
        finally:
            self.active_executions -= 1
        execution = Execution(result, False, int((time.perf_counter() - started) * 1000))
        if idempotency_key:
            self._results[cache_key] = execution
            while len(self._results) > self._remembered:
                self._results.popitem(last=False)
        return execution


def run_in_thread(function: Callable[[dict[str, Any]], dict[str, Any]]) -> ToolFunction:
    """File walking blocks; keep it off the event loop."""

    async def run(arguments: dict[str, Any]) -> dict[str, Any]:
        return await asyncio.to_thread(function, arguments)

    return run
