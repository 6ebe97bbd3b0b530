"""The MCP SDK adapter: one supervised, reused session per external server (`mcp.Client`, stdio or streamable HTTP).

A session is opened once and shared by every call. A supervisor task owns it (the SDK's transports must be
entered and left by one task), re-lists the tools every few seconds and on `tools/list_changed`, and when the session dies
(a stdio server exits, an HTTP server goes away) opens a new one with back-off (1 s doubling to 30 s)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

import mcp_types
from mcp import Client, StdioServerParameters
from mcp.shared.exceptions import MCPError

from services.runtime.errors import FailedPrecondition
from services.runtime.tracing import span
from services.tools.execution import ToolOutput

log = logging.getLogger(__name__)
PING_SECONDS = 5.0  # how often an idle session is probed
MAX_BACKOFF_SECONDS = 30.0
LIST_CHANGED = "notifications/tools/list_changed"


@dataclass(frozen=True)
class RemoteTool:
    """A tool as an external server lists it."""

    name: str
    description: str
    input_schema: dict[str, Any]
    annotations: dict[str, bool]


class ServerUnavailable(FailedPrecondition):
    """The external server cannot take the call now. FAILED_PRECONDITION rather than UNAVAILABLE: a 5xx would count
    against the tools service in Envoy's outlier detection, and another system being down is not its failure."""


def _target(transport: str, command: tuple[str, ...], url: str) -> StdioServerParameters | str:
    if transport == "stdio":
        return StdioServerParameters(command=command[0], args=list(command[1:]))
    return url


def _remote(tool: mcp_types.Tool) -> RemoteTool:
    hints = tool.annotations
    annotations = {
        "read_only": bool(hints and hints.read_only_hint),
        "idempotent": bool(hints and hints.idempotent_hint),
        # MCP's defaults when a server says nothing: may be destructive, may reach the open world.
        "destructive": True if hints is None or hints.destructive_hint is None else hints.destructive_hint,
        "open_world": True if hints is None or hints.open_world_hint is None else hints.open_world_hint,
    }
    return RemoteTool(tool.name, tool.description or "", dict(tool.input_schema or {"type": "object"}), annotations)


def _summary(error: BaseException) -> str:
    """One line about a failure, never a traceback; exception groups are unwrapped to their first cause."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text[:300]


class SdkConnection:
    """A supervised session to one external MCP server."""

    def __init__(
        self, name: str, transport: str, command: tuple[str, ...], url: str, call_timeout: float = 60.0,
        probe_seconds: float = PING_SECONDS,
    ) -> None:
        self.name = name
        self.transport = transport
        self._target = _target(transport, command, url)
        self._call_timeout = call_timeout
        self._probe_seconds = probe_seconds  # how long an idle session waits before it re-lists (its probe)
        self.state = "connecting"
        self.last_error = ""
        self.tools: list[RemoteTool] = []
        self.generation = 0  # bumped whenever `tools` is re-listed
        self._client: Client | None = None
        self._ready = asyncio.Event()
        self._attempted = asyncio.Event()  # a connection attempt ended, well or not
        self.failed_attempts = 0
        self._stop = asyncio.Event()
        self._broken = asyncio.Event()
        self._refresh = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._supervise(), name=f"mcp-{self.name}")

    async def wait_ready(self, timeout: float, attempts: int = 2) -> bool:
        """Whether a session opened within `timeout` and `attempts` attempts. One failed start is retried (after the
        supervisor's first back-off, 1 s), so a server that is down for a moment (a stdio process that died at start,
        an HTTP server restarting) does not fail its registration; one that fails twice answers at once."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not self._ready.is_set() and self.failed_attempts < attempts:
            self._attempted.clear()
            if self._ready.is_set() or self.failed_attempts >= attempts:
                break
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._attempted.wait(), remaining)
        return self._ready.is_set()

    async def close(self) -> None:
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._task, timeout=10)

    async def _on_message(self, message: Any) -> None:
        if getattr(message, "method", None) == LIST_CHANGED:
            self._refresh.set()

    async def _supervise(self) -> None:
        delay = 1.0
        while not self._stop.is_set():
            self.state = "connecting"
            try:
                async with Client(self._target, message_handler=self._on_message, cache=None,
                                  read_timeout_seconds=self._call_timeout) as client:
                    await self._list(client)
                    self._client, self.state, self.last_error = client, "connected", ""
                    self._ready.set()
                    self._attempted.set()
                    delay = 1.0
                    await self._serve(client)
            except Exception as error:  # any failure of the other side: record it, try again later
                self.failed_attempts += 1
                self.last_error = _summary(error)
                log.warning("MCP server %s: %s", self.name, self.last_error)
            finally:
                self._client = None
                self._ready.clear()
                self._broken.clear()
                self._attempted.set()
            if self._stop.is_set():
                break
            self.state = "failed"
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)
            delay = min(delay * 2, MAX_BACKOFF_SECONDS)
        self.state = "closed"

    async def _serve(self, client: Client) -> None:
        """Until stopped or broken: ping, and re-list on a change notification."""
        listener = asyncio.create_task(self._listen(client))
        try:
            while not self._stop.is_set():
                if self._broken.is_set():
                    raise ConnectionError(self.last_error or "session failed")
                if self._refresh.is_set():
                    self._refresh.clear()
                    await self._list(client)
                waits = [asyncio.create_task(e.wait()) for e in (self._stop, self._broken, self._refresh)]
                done, pending = await asyncio.wait(waits, timeout=self._probe_seconds, return_when=asyncio.FIRST_COMPLETED)
                for task in pending:
                    task.cancel()
                if not done:
                    # Re-listing is the liveness probe (ping is gone from 2026-07-28 sessions) and also catches a
                    # definition that changed without a notification.
                    await asyncio.wait_for(self._list(client), timeout=PING_SECONDS)
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await listener

    async def _listen(self, client: Client) -> None:
        """2026-07-28 servers announce list changes only on a `subscriptions/listen` stream."""
        with contextlib.suppress(Exception):
            async with client.listen(tools_list_changed=True) as subscription:
                async for _event in subscription:
                    self._refresh.set()

    async def _list(self, client: Client) -> None:
        tools: list[RemoteTool] = []
        cursor: str | None = None
        for _ in range(100):  # a server paging forever must not hang the listing
            page = await client.list_tools(cursor=cursor)
            tools += [_remote(tool) for tool in page.tools]
            cursor = page.next_cursor
            if not cursor:
                break
        self.tools = tools
        self.generation += 1

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> ToolOutput:
        # The SDK's own "MCP send" span (when tracing is on) nests under this one.
        with span("mcp.call", **{"mcpmesh.mcp_server": self.name, "mcpmesh.mcp_transport": self.transport,
                                 "gen_ai.tool.name": name}) as current:
            output = await self._call_tool(name, arguments)
            if output.is_error:
                current.set_attribute("mcpmesh.tool_error", True)
            return output

    async def _call_tool(self, name: str, arguments: dict[str, Any]) -> ToolOutput:
        client = self._client
        if client is None:
            raise ServerUnavailable(
                f"MCP server {self.name!r} is not connected: {self.last_error or 'connecting'}",
                reason="MCP_SERVER_UNAVAILABLE", metadata={"server": self.name},
            )
        try:
            result = await client.call_tool(name, arguments)
        except MCPError as error:
            # The server answered with a JSON-RPC error: the call failed, the session is fine.
            return ToolOutput([{"type": "text", "text": f"MCP error {error.code}: {error}"}], None, True)
        except (asyncio.CancelledError, TimeoutError):
            raise
        except Exception as error:
            self.last_error = _summary(error)
            self._broken.set()  # the supervisor opens a new session
            raise ServerUnavailable(
                f"MCP server {self.name!r} failed the call: {self.last_error}",
                reason="MCP_SERVER_UNAVAILABLE", metadata={"server": self.name},
            ) from None
        content = [block.model_dump(by_alias=True, exclude_none=True, mode="json") for block in result.content]
        structured = result.structured_content if isinstance(result.structured_content, dict) else None
        return ToolOutput(content, structured, bool(result.is_error))
