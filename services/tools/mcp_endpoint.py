"""The registry as an MCP server for external MCP clients (the official SDK's lowlevel Server and its
streamable HTTP transport, stateless with JSON responses), reached at POST /mcp on the edge.

The edge transcodes the POST into ToolService.CallMcp (the body as a google.api.HttpBody), so the caller is
authenticated like every other call and its identity arrives with it. Here the body is handed to the SDK's
transport as one in-process ASGI request; the tool handlers list and run only what that caller may."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Mapping, MutableMapping
from typing import Any

import mcp_types as types
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from pydantic import TypeAdapter

from services.runtime.config import VERSION
from services.runtime.errors import DomainError, InvalidArgument, PermissionDenied
from services.runtime.identity import Identity
from services.runtime.tracing import span
from services.tools.registry import ToolDefinition, ToolRegistry

CALL_HEADER = "x-mcpmesh-mcp-call"  # set here, in-process only: which caller an ASGI request belongs to
PASSED_HEADERS = ("mcp-protocol-version", "mcp-method", "mcp-name")
_content = TypeAdapter(types.ContentBlock)


def _tool(tool: ToolDefinition) -> types.Tool:
    hints = tool.annotations
    return types.Tool(
        name=tool.name,
        description=tool.description,
        input_schema=tool.input_schema,
        annotations=types.ToolAnnotations(
            read_only_hint=hints.read_only, destructive_hint=hints.destructive,
            idempotent_hint=hints.idempotent, open_world_hint=hints.open_world,
        ),
    )


class McpEndpoint:
    def __init__(self, registry: ToolRegistry) -> None:
        self._registry = registry
        self._callers: dict[str, Identity] = {}
        # Input schemas of the tools listed so far. The SDK checks a tools/call's Mcp-Param-* headers against
        # the tool's schema; without this lookup it runs the whole (per-caller) tools/list before every call.
        self._schemas: dict[str, dict[str, Any]] = {}
        server: Server[Any] = Server(
            "mcpmesh", version=VERSION, instructions="mcpmesh tool registry: built-in file tools and external MCP servers.",
            on_list_tools=self._list_tools, on_call_tool=self._call_tool, get_tool_input_schema=self._schemas.get,
        )
        self._manager = StreamableHTTPSessionManager(server, json_response=True, stateless=True)
        self._stop = asyncio.Event()
        self._started = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """The SDK's manager keeps a task group open for its lifetime; one task enters and leaves it."""

        async def hold() -> None:
            async with self._manager.run():
                self._started.set()
                await self._stop.wait()

        self._task = asyncio.create_task(hold(), name="mcp-endpoint")
        await asyncio.wait_for(self._started.wait(), timeout=10)

    async def close(self) -> None:
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, timeout=10)

    def _caller(self, ctx: Any) -> Identity:
        headers = getattr(getattr(ctx, "request", None), "headers", None) or {}
        found = self._callers.get(headers.get(CALL_HEADER, ""))
        if found is None:
            # Never fall back to "anonymous" (which means a service inside the mesh): no caller, no tools.
            raise PermissionDenied("the MCP request carries no caller", reason="MCP_CALLER_UNKNOWN")
        return found

    async def _list_tools(self, ctx: Any, params: Any) -> types.ListToolsResult:
        tools = await self._registry.list(self._caller(ctx))
        self._schemas.update((tool.name, tool.input_schema) for tool in tools)
        # A tool whose definition changed since it was approved is not offered until an admin approves it.
        return types.ListToolsResult(tools=[_tool(t) for t in tools if not t.changed])

    async def _call_tool(self, ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        try:
            execution = await self._registry.execute(params.name, dict(params.arguments or {}), self._caller(ctx))
        except DomainError as error:
            # MCP reports a failed tool call in the result, so the model sees why (a bad argument, a denial).
            return types.CallToolResult(content=[types.TextContent(type="text", text=error.message)], is_error=True)
        output = execution.output
        return types.CallToolResult(
            content=[_content.validate_python(block) for block in output.content],
            structured_content=output.structured,
            is_error=output.is_error,
        )

    async def handle(
        self, body: bytes, content_type: str, headers: Mapping[str, str], caller: Identity
    ) -> tuple[int, str, bytes]:
        """One POST /mcp: (HTTP status, content type, body) of the SDK transport's answer."""
        if not body:
            raise InvalidArgument.field("body", "is required: one JSON-RPC message")
        token = uuid.uuid4().hex
        self._callers[token] = caller
        scope_headers = [
            (b"content-type", (content_type or "application/json").encode("latin-1")),
            (b"accept", b"application/json, text/event-stream"),
            (b"host", b"localhost"),
            (CALL_HEADER.encode(), token.encode()),
            *[(name.encode(), value.encode("latin-1")) for name, value in headers.items() if name in PASSED_HEADERS],
        ]
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
            "path": "/mcp", "raw_path": b"/mcp", "root_path": "", "query_string": b"", "headers": scope_headers,
            "server": ("localhost", 80), "client": ("127.0.0.1", 0),
        }
        answer: dict[str, Any] = {"status": 500, "headers": [], "body": b""}
        delivered = asyncio.Event()
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await delivered.wait()
            return {"type": "http.disconnect"}

        async def send(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                answer["status"], answer["headers"] = message["status"], message.get("headers", [])
            elif message["type"] == "http.response.body":
                answer["body"] += message.get("body", b"")
                if not message.get("more_body", False):
                    delivered.set()

        # The method and tool come from the client's Mcp-Method and Mcp-Name headers: no need to parse the body here.
        attributes = {"mcp.method.name": headers.get("mcp-method"), "gen_ai.tool.name": headers.get("mcp-name"),
                      "enduser.id": caller.principal or None}
        with span("mcp.request", **attributes) as current:
            try:
                await self._manager.handle_request(scope, receive, send)
            finally:
                delivered.set()
                del self._callers[token]
            current.set_attribute("http.response.status_code", int(answer["status"]))
        response_type = next((v.decode("latin-1") for k, v in answer["headers"] if k.lower() == b"content-type"), "")
        return int(answer["status"]), response_type or "application/json", bytes(answer["body"])
