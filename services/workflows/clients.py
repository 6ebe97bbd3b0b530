"""Calls to agents and tools through the mesh, as the graph's StepCalls."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from google.protobuf import json_format
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from mcpmesh.agents.v1 import agent_pb2, agent_service_pb2, agent_service_pb2_grpc
from mcpmesh.tools.v1 import tool_service_pb2, tool_service_pb2_grpc

from services.runtime.errors import DomainError, Unavailable
from services.runtime.mesh import Mesh
from services.runtime.protos import from_struct, to_struct
from services.runtime.service_tokens import ServiceCredentials
from services.workflows.steps import StepProgress, acting_for, progress_sink


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
    """Each call carries a token for the workflow's creator (ServiceCredentials.token_for), so agents and tools apply
    the creator's role, grants and scopes: a workflow can do no more than the key that created it."""

    def __init__(self, mesh: Mesh, credentials: ServiceCredentials) -> None:
        self._agents = agent_service_pb2_grpc.AgentServiceStub(mesh.channel("agents"))
        self._tools = tool_service_pb2_grpc.ToolServiceStub(mesh.channel("tools"))
        self._mesh = mesh
        self._credentials = credentials

    def _as_creator(self) -> tuple[tuple[str, str]]:
        return (("authorization", f"Bearer {self._credentials.token_for(acting_for())}"),)

    async def run_agent(self, agent: str, inputs: dict[str, Any], key: str) -> dict[str, Any]:
        """The agent's finished run. Inside a step the run is streamed (StreamAgentRun) and its progress reports go
        to the step's sink as they come; the idempotency key is the same either way."""
        options = agent_service_pb2.RunOptions(idempotency_key=key)
        sink = progress_sink()
        try:
            if sink is None:
                request = agent_service_pb2.RunAgentRequest(name=agent, input=to_struct(inputs), options=options)
                finished = (await self._agents.RunAgent(request, timeout=self._mesh.deadline("agents"),
                                                        metadata=self._as_creator())).run
            else:
                finished = await self._stream_run(
                    agent_service_pb2.StreamAgentRunRequest(name=agent, input=to_struct(inputs), options=options), sink)
        except grpc.aio.AioRpcError as error:
            raise UpstreamError("agents", error) from None
        run = json_format.MessageToDict(finished, preserving_proto_field_name=True)
        # proto3 JSON writes int64 as strings; the merged result wants plain numbers.
        run["usage"] = {name: int(value) for name, value in run.get("usage", {}).items()}
        return run

    async def _stream_run(
        self, request: agent_service_pb2.StreamAgentRunRequest, sink: Callable[[StepProgress], Awaitable[None]]
    ) -> agent_pb2.AgentRun:
        call = self._agents.StreamAgentRun(request, timeout=self._mesh.deadline("agents"), metadata=self._as_creator())
        finished: agent_pb2.AgentRun | None = None
        # Read to the stream's end (the run is its last message): a call dropped before that is cancelled by gRPC,
        # work for both sides and the mesh.
        async for message in call:
            if message.HasField("run"):
                finished = message.run
                continue
            report = message.progress
            await sink(StepProgress(report.stage, report.fraction, report.items_done, report.items_total))
        if finished is None:
            # The stream closed cleanly but early (an instance stopping): transient, so the step is tried again.
            raise Unavailable("agents: the run's stream ended before the run", reason="AGENT_STREAM_ENDED")
        return finished

    async def execute_tool(self, tool: str, arguments: dict[str, Any], key: str) -> dict[str, Any]:
        request = tool_service_pb2.ExecuteToolRequest(name=tool, arguments=to_struct(arguments), idempotency_key=key)
        try:
            response = await self._tools.ExecuteTool(request, timeout=self._mesh.deadline("tools"),
                                                     metadata=self._as_creator())
        except grpc.aio.AioRpcError as error:
            raise UpstreamError("tools", error) from None
        return from_struct(response.result)
