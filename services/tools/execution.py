"""How a tool runs: what it returns, its time limit, and the concurrency limit with a bounded queue."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from services.runtime.errors import DomainError, ResourceExhausted


@dataclass(frozen=True)
class ToolOutput:
    """A tool's result in MCP's terms: content blocks, optional structured content, and the error flag."""

    content: list[dict[str, Any]] = field(default_factory=list)
    structured: dict[str, Any] | None = None
    is_error: bool = False

    @classmethod
    def of(cls, result: dict[str, Any]) -> ToolOutput:
        """A built-in tool's dict: the structured content, with its JSON as the text block (as MCP recommends)."""
        return cls([{"type": "text", "text": json.dumps(result, ensure_ascii=False)}], result, False)

    @property
    def result(self) -> dict[str, Any]:
        """The one structured answer: the structured content, else the text blocks joined."""
        if self.structured is not None:
            return self.structured
        return {"text": "\n".join(str(block.get("text", "")) for block in self.content if block.get("type") == "text")}

    def to_json(self) -> dict[str, Any]:
        return {"content": self.content, "structured": self.structured, "is_error": self.is_error}

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> ToolOutput:
        return cls(list(body.get("content") or []), body.get("structured"), bool(body.get("is_error")))


ToolFunction = Callable[[dict[str, Any]], Awaitable[ToolOutput]]


class ToolTimedOut(DomainError):
    """A tool ran past its time limit. ABORTED, not DEADLINE_EXCEEDED: Envoy maps the latter to 504 and counts it
    toward outlier detection, and one slow tool must not eject the tools service from the mesh."""

    code = "ABORTED"


class ExecutionLimiter:
    """At most `concurrency` tools run at once; at most `queue` more wait; beyond that a call is refused.

    `waiting` is the queue depth: the ToolExecutionQueue metric."""

    def __init__(self, concurrency: int, queue: int) -> None:
        self._slots = asyncio.Semaphore(max(concurrency, 1))
        self._queue = queue
        self.waiting = 0
        self.running = 0

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        if self._slots.locked() and self.waiting >= self._queue:
            raise ResourceExhausted(
                f"tool execution queue is full ({self._queue} waiting)", reason="TOOL_QUEUE_FULL"
            )
        self.waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        self.running += 1
        try:
            yield
        finally:
            self.running -= 1
            self._slots.release()


async def run_with_timeout(name: str, call: Awaitable[ToolOutput], seconds: float) -> ToolOutput:
    """The call's output, or ToolTimedOut; the call is cancelled at the limit (a thread finishes unobserved).

    `asyncio.timeout` runs the call in the caller's task (`wait_for` made a task per call): cheaper, and the call
    keeps the caller's context (its trace span) as it is."""
    try:
        async with asyncio.timeout(seconds):
            return await call
    except TimeoutError:
        raise ToolTimedOut(
            f"tool {name!r} did not finish within {seconds:g} s", reason="TOOL_TIMEOUT", metadata={"tool": name}
        ) from None
