"""ToolService: proto in, registry call, proto out."""

from __future__ import annotations

from typing import Any, cast

import grpc
from google.api import httpbody_pb2
from google.protobuf import struct_pb2
from mcpmesh.tools.v1 import tool_pb2, tool_service_pb2, tool_service_pb2_grpc

from services.runtime import call_metadata
from services.runtime.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from services.runtime.identity import Identity, caller
from services.runtime.pages import Page
from services.runtime.protos import from_struct, timestamp, to_struct
from services.tools.mcp_endpoint import McpEndpoint
from services.tools.mcp_servers import McpServers, McpServerSpec, ServerView
from services.tools.permissions import Permission, PermissionStore, is_pattern
from services.tools.registry import ToolDefinition, ToolRegistry

_SOURCES = {
    "builtin": tool_pb2.TOOL_SOURCE_BUILTIN,
    "dynamic": tool_pb2.TOOL_SOURCE_DYNAMIC,
    "external_mcp": tool_pb2.TOOL_SOURCE_EXTERNAL_MCP,
}
_STATES = {
    "connected": tool_pb2.MCP_SERVER_STATE_CONNECTED,
    "failed": tool_pb2.MCP_SERVER_STATE_FAILED,
    "connecting": tool_pb2.MCP_SERVER_STATE_CONNECTING,
}
_TRANSPORTS = {tool_pb2.MCP_TRANSPORT_STDIO: "stdio", tool_pb2.MCP_TRANSPORT_STREAMABLE_HTTP: "http"}


def _tool(tool: ToolDefinition) -> tool_pb2.Tool:
    hints = tool.annotations
    return tool_pb2.Tool(
        name=tool.name,
        description=tool.description,
        input_schema=to_struct(tool.input_schema),
        source=_SOURCES.get(tool.source, tool_pb2.TOOL_SOURCE_UNSPECIFIED),
        server=tool.server,
        definition_hash=tool.definition_hash,
        create_time=timestamp(tool.created),
        annotations=tool_pb2.ToolAnnotations(
            read_only_hint=hints.read_only, destructive_hint=hints.destructive,
            idempotent_hint=hints.idempotent, open_world_hint=hints.open_world,
        ),
        definition_state=tool_pb2.DEFINITION_STATE_CHANGED if tool.changed else tool_pb2.DEFINITION_STATE_APPROVED,
        approved_hash=tool.approved_hash if tool.approved_hash else tool.definition_hash,
    )


def _server(view: ServerView) -> tool_pb2.McpServer:
    spec = view.spec
    transport = next(k for k, v in _TRANSPORTS.items() if v == spec.transport)
    return tool_pb2.McpServer(
        name=spec.name, transport=transport, command=list(spec.command), url=spec.url, tools=view.tools,
        create_time=timestamp(spec.created), state=_STATES.get(view.state, tool_pb2.MCP_SERVER_STATE_UNSPECIFIED),
        last_error=view.last_error,
    )


def _permission(permission: Permission) -> tool_pb2.ToolPermission:
    return tool_pb2.ToolPermission(
        tool=permission.tool, principal=permission.principal, create_time=timestamp(permission.created)
    )


def _require_admin(identity: Identity, action: str) -> None:
    if not identity.has_role("admin"):
        raise PermissionDenied(f"{action} needs the admin role", reason="ROLE_TOO_LOW", metadata={"required_role": "admin"})


class ToolServicer(tool_service_pb2_grpc.ToolServiceServicer):
    def __init__(
        self, registry: ToolRegistry, permissions: PermissionStore, servers: McpServers, endpoint: McpEndpoint
    ) -> None:
        self._registry = registry
        self._permissions = permissions
        self._servers = servers
        self._endpoint = endpoint

    async def ListTools(
        self, request: tool_service_pb2.ListToolsRequest, context: grpc.aio.ServicerContext
    ) -> tool_service_pb2.ListToolsResponse:
        page = Page.of(request.page_size, request.page_token)
        tools, more = page.cut(await self._registry.list(caller(context)))
        return tool_service_pb2.ListToolsResponse(tools=[_tool(t) for t in tools], next_page_token=page.next_token(more))

    async def GetTool(
        self, request: tool_service_pb2.GetToolRequest, context: grpc.aio.ServicerContext
    ) -> tool_service_pb2.GetToolResponse:
        return tool_service_pb2.GetToolResponse(tool=_tool(await self._registry.get(request.name, caller(context))))

    async def ExecuteTool(
        self, request: tool_service_pb2.ExecuteToolRequest, context: grpc.aio.ServicerContext
    ) -> tool_service_pb2.ExecuteToolResponse:
        execution = await self._registry.execute(
            request.name, from_struct(request.arguments), caller(context), request.idempotency_key
        )
        output = execution.output
        content = struct_pb2.ListValue()
        content.extend(cast(Any, output.content))  # dicts become Structs (the stub names only Struct values)
        # The result is the structured content when there is one: converted once, used for both fields.
        result = to_struct(output.result)
        response = tool_service_pb2.ExecuteToolResponse(
            result=result, cached=execution.cached, duration_ms=execution.duration_ms, content=content,
            is_error=output.is_error,
        )
        if output.structured is not None:
            response.structured_content.CopyFrom(result)
        return response

    async def RegisterTool(
        self, request: tool_service_pb2.RegisterToolRequest, context: grpc.aio.ServicerContext
    ) -> tool_service_pb2.RegisterToolResponse:
        _require_admin(caller(context), "registering a tool")
        tool = request.tool
        if not tool.name:
            raise InvalidArgument.field("tool.name", "is required")
        if not tool.target_server:
            raise InvalidArgument.field("tool.target_server", "is required: the MCP server that executes the tool")
        if tool.target_server not in {view.spec.name for view in await self._servers.views()}:
            raise FailedPrecondition(
                f"MCP server {tool.target_server!r} is not registered: register the server (RegisterMcpServer, "
                "`mcpmesh mcp-servers register`) and all its tools join the registry",
                reason="MCP_SERVER_NOT_FOUND", metadata={"server": tool.target_server},
            )
        # Tools are not added one by one: a server's tools join the registry when the server is registered, each
        # pinned by hash (a tool it adds later is listed as changed until approved). One registration path keeps
        # the pinned definition the server's own, never a copy that could drift from what the server runs.
        raise FailedPrecondition(
            f"tools are not registered one by one: every tool of MCP server {tool.target_server!r} joined the "
            f"registry as {tool.target_server}.<tool> when the server was registered; approve a new or changed one "
            "with ApproveToolDefinition (`mcpmesh tools approve NAME HASH`) and choose who may run it with tool "
            "permissions",
            reason="TOOLS_COME_FROM_SERVERS", metadata={"server": tool.target_server},
        )

    async def UnregisterTool(
        self, request: tool_service_pb2.UnregisterToolRequest, context: grpc.aio.ServicerContext
    ) -> tool_service_pb2.UnregisterToolResponse:
        _require_admin(caller(context), "unregistering a tool")
        tool = await self._registry.get(request.name)
        if tool.source == "builtin":
            raise FailedPrecondition(f"tool {tool.name!r} is built in and cannot be unregistered", reason="TOOL_IS_BUILTIN")
        raise FailedPrecondition(
            f"tool {tool.name!r} comes from MCP server {tool.server!r}; remove the server to remove its tools",
            reason="TOOL_BELONGS_TO_SERVER", metadata={"server": tool.server},
        )

    async def ApproveToolDefinition(
        self, request: tool_service_pb2.ApproveToolDefinitionRequest, context: grpc.aio.ServicerContext
    ) -> tool_service_pb2.ApproveToolDefinitionResponse:
        _require_admin(caller(context), "approving a tool definition")
        if not request.name:
            raise InvalidArgument.field("name", "is required")
        if not request.definition_hash:
            raise InvalidArgument.field("definition_hash", "is required: the hash of the definition you reviewed")
        tool = await self._registry.get(request.name)
        if tool.source != "external_mcp":
            raise FailedPrecondition(f"tool {tool.name!r} is built in: nothing to approve", reason="TOOL_IS_BUILTIN")
        approved = await self._servers.approve(request.name, request.definition_hash)
        await self._registry.forget_results(request.name)
        return tool_service_pb2.ApproveToolDefinitionResponse(tool=_tool(approved))

    async def RegisterMcpServer(
        self, request: tool_service_pb2.RegisterMcpServerRequest, context: grpc.aio.ServicerContext
    ) -> tool_service_pb2.RegisterMcpServerResponse:
        _require_admin(caller(context), "registering an MCP server")
        server = request.server
        transport = _TRANSPORTS.get(server.transport)
        if transport is None:
            raise InvalidArgument.field("server.transport", "must be MCP_TRANSPORT_STDIO or MCP_TRANSPORT_STREAMABLE_HTTP")
        if transport == "stdio" and server.url:
            raise InvalidArgument.field("server.url", "must be empty for a stdio server")
        if transport == "http" and server.command:
            raise InvalidArgument.field("server.command", "must be empty for a streamable HTTP server")
        spec = McpServerSpec(server.name, transport, tuple(server.command), server.url)
        view = await self._servers.register(spec)
        return tool_service_pb2.RegisterMcpServerResponse(server=_server(view))

    async def ListMcpServers(
        self, request: tool_service_pb2.ListMcpServersRequest, context: grpc.aio.ServicerContext
    ) -> tool_service_pb2.ListMcpServersResponse:
        page = Page.of(request.page_size, request.page_token)
        views, more = page.cut(await self._servers.views())
        return tool_service_pb2.ListMcpServersResponse(
            servers=[_server(v) for v in views], next_page_token=page.next_token(more)
        )

    async def RemoveMcpServer(
        self, request: tool_service_pb2.RemoveMcpServerRequest, context: grpc.aio.ServicerContext
    ) -> tool_service_pb2.RemoveMcpServerResponse:
        _require_admin(caller(context), "removing an MCP server")
        if not request.name:
            raise InvalidArgument.field("name", "is required")
        await self._servers.remove(request.name)
        return tool_service_pb2.RemoveMcpServerResponse()

    async def CallMcp(
        self, request: tool_service_pb2.CallMcpRequest, context: grpc.aio.ServicerContext
    ) -> httpbody_pb2.HttpBody:
        headers = {k: v for k, v in call_metadata.of(context) if isinstance(v, str)}
        # The JSON-RPC answer goes back whatever the transport's HTTP status was: a JSON-RPC error is in the body,
        # and MCP clients read it from a 200 as from a 4xx.
        _status, content_type, body = await self._endpoint.handle(
            request.body.data, request.body.content_type, headers, caller(context)
        )
        return httpbody_pb2.HttpBody(content_type=content_type, data=body)

    async def GrantToolPermission(
        self, request: tool_service_pb2.GrantToolPermissionRequest, context: grpc.aio.ServicerContext
    ) -> tool_service_pb2.GrantToolPermissionResponse:
        _require_admin(caller(context), "granting a tool permission")
        permission = request.permission
        if permission.tool and not is_pattern(permission.tool):
            await self._registry.get(permission.tool)
        stored = await self._permissions.grant(permission.tool, permission.principal)
        return tool_service_pb2.GrantToolPermissionResponse(permission=_permission(stored))

    async def RevokeToolPermission(
        self, request: tool_service_pb2.RevokeToolPermissionRequest, context: grpc.aio.ServicerContext
    ) -> tool_service_pb2.RevokeToolPermissionResponse:
        _require_admin(caller(context), "revoking a tool permission")
        await self._permissions.revoke(request.tool, request.principal)
        return tool_service_pb2.RevokeToolPermissionResponse()

    async def ListToolPermissions(
        self, request: tool_service_pb2.ListToolPermissionsRequest, context: grpc.aio.ServicerContext
    ) -> tool_service_pb2.ListToolPermissionsResponse:
        page = Page.of(request.page_size, request.page_token)
        permissions, more = await self._permissions.page(request.tool, page.offset, page.size)
        return tool_service_pb2.ListToolPermissionsResponse(
            permissions=[_permission(p) for p in permissions], next_page_token=page.next_token(more)
        )
