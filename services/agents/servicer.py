"""AgentService: proto in, runner call, proto out."""

from __future__ import annotations

import grpc
from mcpmesh.agents.v1 import agent_pb2, agent_service_pb2, agent_service_pb2_grpc

from services.agents.catalog import AgentRunner, AgentSpec
from services.agents.runs import AgentRun
from services.runtime.pages import Page
from services.runtime.protos import from_struct, timestamp, to_struct

_SEVERITY = {
    "info": agent_pb2.SEVERITY_INFO,
    "low": agent_pb2.SEVERITY_LOW,
    "medium": agent_pb2.SEVERITY_MEDIUM,
    "high": agent_pb2.SEVERITY_HIGH,
    "critical": agent_pb2.SEVERITY_CRITICAL,
}
_STATE = {"running": agent_pb2.RUN_STATE_RUNNING, "succeeded": agent_pb2.RUN_STATE_SUCCEEDED, "failed": agent_pb2.RUN_STATE_FAILED}
_LLM = {
    "not_configured": agent_pb2.LLM_STATUS_NOT_CONFIGURED,
    "skipped": agent_pb2.LLM_STATUS_SKIPPED,
    "completed": agent_pb2.LLM_STATUS_COMPLETED,
    "failed": agent_pb2.LLM_STATUS_FAILED,
}


def _agent(spec: AgentSpec) -> agent_pb2.Agent:
    return agent_pb2.Agent(
        name=spec.name,
        display_name=spec.display_name,
        description=spec.description,
        input_schema=to_struct(spec.input_schema),
        llm_enabled=False,
    )


def _run(run: AgentRun) -> agent_pb2.AgentRun:
    return agent_pb2.AgentRun(
        id=run.id,
        agent=run.agent,
        input=to_struct(run.input),
        state=_STATE[run.state],
        findings=[
            agent_pb2.Finding(
                rule_id=f.rule_id, severity=_SEVERITY[f.severity], category=f.category, message=f.message,
                file=f.file, line=f.line, column=f.column,
            )
            for f in run.findings
        ],
        artifacts=[agent_pb2.Artifact(**a) for a in run.artifacts],
        metrics=to_struct(run.metrics),
        usage=agent_pb2.Usage(**run.usage),
        llm_status=_LLM[run.llm_status],
        summary=run.summary,
        error=run.error,
        create_time=timestamp(run.created),
        end_time=timestamp(run.ended),
        truncated=run.truncated,
    )


class AgentServicer(agent_service_pb2_grpc.AgentServiceServicer):
    def __init__(self, runner: AgentRunner) -> None:
        self._runner = runner

    async def ListAgents(
        self, request: agent_service_pb2.ListAgentsRequest, context: grpc.aio.ServicerContext
    ) -> agent_service_pb2.ListAgentsResponse:
        page = Page.of(request.page_size, request.page_token)
        agents, more = page.cut(self._runner.list())
        return agent_service_pb2.ListAgentsResponse(agents=[_agent(a) for a in agents], next_page_token=page.next_token(more))

    async def GetAgent(
        self, request: agent_service_pb2.GetAgentRequest, context: grpc.aio.ServicerContext
    ) -> agent_service_pb2.GetAgentResponse:
        return agent_service_pb2.GetAgentResponse(agent=_agent(self._runner.get(request.name)))

    async def RunAgent(
        self, request: agent_service_pb2.RunAgentRequest, context: grpc.aio.ServicerContext
    ) -> agent_service_pb2.RunAgentResponse:
        run = await self._runner.run(
            request.name,
            from_struct(request.input),
            max_files=request.options.max_files,
            disable_llm=request.options.disable_llm,
            key=request.options.idempotency_key,
        )
        return agent_service_pb2.RunAgentResponse(run=_run(run))

    async def GetAgentRun(
        self, request: agent_service_pb2.GetAgentRunRequest, context: grpc.aio.ServicerContext
    ) -> agent_service_pb2.GetAgentRunResponse:
        return agent_service_pb2.GetAgentRunResponse(run=_run(self._runner.get_run(request.id)))
