"""Calls to agents and tools through the mesh, as the graph's StepCalls."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import json_format
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from mcpmesh.agents.v1 import agent_service_pb2, agent_service_pb2_grpc
from mcpmesh.tools.v1 import tool_service_pb2, tool_service_pb2_grpc

from services.runtime.errors import DomainError
from services.runtime.mesh import Mesh
from services.runtime.protos import from_struct, to_struct


class UpstreamError(DomainError):
    """A call to another service failed; keeps its status code name and ErrorInfo reason."""

    def __init__(self, service: str, error: grpc.aio.AioRpcError) -> None:
        reason = error.code().name
        try:
            # The stubs want a grpc.Call; AioRpcError has the code, details and trailers from_call reads.
            status = rpc_status.from_call(error)  # type: ignore[arg-type]
        except ValueError:
            status = None
        if status is not None:
            for detail in status.details:
                info = error_details_pb2.ErrorInfo()
                if detail.Unpack(info):
                    reason = info.reason
        super().__init__(f"{service}: {error.details()}", reason=reason)
        self.code = error.code().name  # keep the upstream's code, not INTERNAL


class MeshStepCalls:
    def __init__(self, mesh: Mesh) -> None:
        self._agents = agent_service_pb2_grpc.AgentServiceStub(mesh.channel("agents"))
        self._tools = tool_service_pb2_grpc.ToolServiceStub(mesh.channel("tools"))
        self._mesh = mesh

    async def run_agent(self, agent: str, inputs: dict[str, Any], key: str) -> dict[str, Any]:
        request = agent_service_pb2.RunAgentRequest(
            name=agent, input=to_struct(inputs), options=agent_service_pb2.RunOptions(idempotency_key=key)
        )
        try:
            response = await self._agents.RunAgent(request, timeout=self._mesh.deadline("agents"))
        except grpc.aio.AioRpcError as error:
            raise UpstreamError("agents", error) from None
        run = json_format.MessageToDict(response.run, preserving_proto_field_name=True)
        # proto3 JSON writes int64 as strings; the merged result wants plain numbers.
        run["usage"] = {name: int(value) for name, value in run.get("usage", {}).items()}
        return run

    async def execute_tool(self, tool: str, arguments: dict[str, Any], key: str) -> dict[str, Any]:
        request = tool_service_pb2.ExecuteToolRequest(name=tool, arguments=to_struct(arguments), idempotency_key=key)
        try:
            response = await self._tools.ExecuteTool(request, timeout=self._mesh.deadline("tools"))
        except grpc.aio.AioRpcError as error:
            raise UpstreamError("tools", error) from None
        return from_struct(response.result)
