"""ToolService: proto in, registry call, proto out."""

from __future__ import annotations

import grpc
from mcpmesh.tools.v1 import tool_pb2, tool_service_pb2, tool_service_pb2_grpc

from services.runtime.errors import FailedPrecondition, InvalidArgument, NotFound, Unimplemented
from services.runtime.identity import caller
from services.runtime.pages import Page
from services.runtime.protos import from_struct, timestamp, to_struct
from services.tools.permissions import Permission, PermissionStore, is_pattern
from services.tools.registry import ToolDefinition, ToolRegistry

_SOURCES = {"builtin": tool_pb2.TOOL_SOURCE_BUILTIN, "dynamic": tool_pb2.TOOL_SOURCE_DYNAMIC}


def _tool(tool: ToolDefinition) -> tool_pb2.Tool:
    return tool_pb2.Tool(
        name=tool.name,
        description=tool.description,
        input_schema=to_struct(tool.input_schema),
        source=_SOURCES.get(tool.source, tool_pb2.TOOL_SOURCE_UNSPECIFIED),
        definition_hash=tool.definition_hash,
        create_time=timestamp(tool.created),
    )


def _permission(permission: Permission) -> tool_pb2.ToolPermission:
    return tool_pb2.ToolPermission(
        tool=permission.tool, principal=permission.principal, create_time=timestamp(permission.created)
    )


class ToolServicer(tool_service_pb2_grpc.ToolServiceServicer):
    def __init__(self, registry: ToolRegistry, permissions: PermissionStore) -> None:
        self._registry = registry
        self._permissions = permissions

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
        return tool_service_pb2.ExecuteToolResponse(
            result=to_struct(execution.result), cached=execution.cached, duration_ms=execution.duration_ms
        )

    async def RegisterTool(
        self, request: tool_service_pb2.RegisterToolRequest, context: grpc.aio.ServicerContext
    ) -> tool_service_pb2.RegisterToolResponse:
        tool = request.tool
        if not tool.name:
            raise InvalidArgument.field("tool.name", "is required")
        if not tool.target_server:
            raise InvalidArgument.field("tool.target_server", "is required: the MCP server that executes the tool")
        # A dynamic tool runs on a registered MCP server, and none can be registered yet.
        raise FailedPrecondition(
            f"MCP server {tool.target_server!r} is not registered", reason="MCP_SERVER_NOT_FOUND",
            metadata={"server": tool.target_server},
        )

    async def UnregisterTool(
        self, request: tool_service_pb2.UnregisterToolRequest, context: grpc.aio.ServicerContext
    ) -> tool_service_pb2.UnregisterToolResponse:
        await self._registry.unregister(request.name)
        return tool_service_pb2.UnregisterToolResponse()

    async def RegisterMcpServer(
        self, request: tool_service_pb2.RegisterMcpServerRequest, context: grpc.aio.ServicerContext
    ) -> tool_service_pb2.RegisterMcpServerResponse:
        raise Unimplemented(
            "registering external MCP servers is not available in this version", reason="MCP_SERVERS_NOT_AVAILABLE"
        )

    async def ListMcpServers(
        self, request: tool_service_pb2.ListMcpServersRequest, context: grpc.aio.ServicerContext
    ) -> tool_service_pb2.ListMcpServersResponse:
        Page.of(request.page_size, request.page_token)  # refuse bad paging even though the list is empty
        return tool_service_pb2.ListMcpServersResponse()

    async def RemoveMcpServer(
        self, request: tool_service_pb2.RemoveMcpServerRequest, context: grpc.aio.ServicerContext
    ) -> tool_service_pb2.RemoveMcpServerResponse:
        if not request.name:
            raise InvalidArgument.field("name", "is required")
        raise NotFound(f"MCP server {request.name!r} is not registered", reason="MCP_SERVER_NOT_FOUND")

    async def GrantToolPermission(
        self, request: tool_service_pb2.GrantToolPermissionRequest, context: grpc.aio.ServicerContext
    ) -> tool_service_pb2.GrantToolPermissionResponse:
        permission = request.permission
        if permission.tool and not is_pattern(permission.tool):
            await self._registry.get(permission.tool)
        stored = await self._permissions.grant(permission.tool, permission.principal)
        return tool_service_pb2.GrantToolPermissionResponse(permission=_permission(stored))

    async def RevokeToolPermission(
        self, request: tool_service_pb2.RevokeToolPermissionRequest, context: grpc.aio.ServicerContext
    ) -> tool_service_pb2.RevokeToolPermissionResponse:
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
