"""AgentService: proto in, runner call, proto out."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import grpc
from mcpmesh.agents.v1 import agent_pb2, agent_service_pb2, agent_service_pb2_grpc

from services.agents.base import SEVERITIES, AgentSpec, FileSpan, Finding
from services.agents.runner import AgentRunner, ProgressReport, RunOptions
from services.agents.runs import AgentRun, MessageBounds, bounded
from services.runtime.identity import caller
from services.runtime.pages import Page
from services.runtime.protos import from_struct, timestamp, to_struct

_SEVERITY = {
    "info": agent_pb2.SEVERITY_INFO,
    "low": agent_pb2.SEVERITY_LOW,
    "medium": agent_pb2.SEVERITY_MEDIUM,
    "high": agent_pb2.SEVERITY_HIGH,
    "critical": agent_pb2.SEVERITY_CRITICAL,
}
_CONFIDENCE = {"low": agent_pb2.CONFIDENCE_LOW, "medium": agent_pb2.CONFIDENCE_MEDIUM, "high": agent_pb2.CONFIDENCE_HIGH}
_STATE = {"running": agent_pb2.RUN_STATE_RUNNING, "succeeded": agent_pb2.RUN_STATE_SUCCEEDED, "failed": agent_pb2.RUN_STATE_FAILED}
_LLM = {
    "not_configured": agent_pb2.LLM_STATUS_NOT_CONFIGURED,
    "skipped": agent_pb2.LLM_STATUS_SKIPPED,
    "completed": agent_pb2.LLM_STATUS_COMPLETED,
    "failed": agent_pb2.LLM_STATUS_FAILED,
}


def _agent(spec: AgentSpec, llm: bool) -> agent_pb2.Agent:
    return agent_pb2.Agent(
        name=spec.name,
        display_name=spec.display_name,
        description=spec.description,
        input_schema=to_struct(spec.parameters),
        llm_enabled=llm and spec.uses_model,
        capabilities=spec.capabilities,
    )


def finding_message(f: Finding) -> agent_pb2.Finding:
    message = agent_pb2.Finding(
        rule_id=f.rule_id,
        severity=_SEVERITY[f.severity],
        category=f.category,
        message=f.message,
        tool=f.tool,
        confidence=_CONFIDENCE[f.confidence],
        cwe=f.cwe,
        fix_hint=f.fix_hint,
        snippet=f.snippet,
        fingerprint=f.fingerprint,
    )
    if isinstance(f.location, FileSpan):
        span = f.location
        message.file, message.line, message.column = span.file, span.line, span.column
        message.end_line, message.end_column = span.end_line, span.end_column
    else:
        message.object.kind, message.object.name = f.location.kind, f.location.name
    return message


def run_message(run: AgentRun, bounds: MessageBounds) -> agent_pb2.AgentRun:
    """The run with a bounded selection of its findings, so that a huge result still fits in a message."""
    result = run.result
    selected, cut = bounded(result.findings, bounds)
    counts = Counter(f.severity for f in result.findings)
    return agent_pb2.AgentRun(
        id=run.id,
        agent=run.agent,
        input=to_struct(run.input),
        state=_STATE[run.state],
        findings=[finding_message(f) for f in selected],
        total_findings=len(result.findings),
        findings_truncated=cut,
        finding_counts={severity: counts[severity] for severity in SEVERITIES},
        artifacts=[agent_pb2.Artifact(name=a.name, media_type=a.media_type, content=a.content) for a in result.artifacts],
        metrics=to_struct(result.metrics),
        usage=agent_pb2.Usage(
            files_analyzed=result.files_analyzed,
            files_skipped=result.files_skipped,
            lines_analyzed=result.lines_analyzed,
            input_tokens=result.input_tokens,
            output_tokens=result.output_tokens,
            duration_ms=run.duration_ms,
        ),
        llm_status=_LLM[result.llm_status],
        summary=result.summary,
        error=run.error,
        create_time=timestamp(run.created),
        end_time=timestamp(run.ended),
        truncated=result.truncated,
    )


class AgentServicer(agent_service_pb2_grpc.AgentServiceServicer):
    def __init__(self, runner: AgentRunner, bounds: MessageBounds = MessageBounds()) -> None:
        self._runner = runner
        self._bounds = bounds

    async def ListAgents(
        self, request: agent_service_pb2.ListAgentsRequest, context: grpc.aio.ServicerContext
    ) -> agent_service_pb2.ListAgentsResponse:
        page = Page.of(request.page_size, request.page_token)
        agents, more = page.cut(self._runner.list_agents())
        llm = self._runner.model is not None
        return agent_service_pb2.ListAgentsResponse(
            agents=[_agent(a, llm) for a in agents], next_page_token=page.next_token(more)
        )

    async def GetAgent(
        self, request: agent_service_pb2.GetAgentRequest, context: grpc.aio.ServicerContext
    ) -> agent_service_pb2.GetAgentResponse:
        return agent_service_pb2.GetAgentResponse(agent=_agent(self._runner.get(request.name), self._runner.model is not None))

    async def RunAgent(
        self, request: agent_service_pb2.RunAgentRequest, context: grpc.aio.ServicerContext
    ) -> agent_service_pb2.RunAgentResponse:
        options = RunOptions(
            max_files=request.options.max_files,
            disable_llm=request.options.disable_llm,
            idempotency_key=request.options.idempotency_key,
        )
        run = await self._runner.run(request.name, from_struct(request.input), options, caller(context))
        return agent_service_pb2.RunAgentResponse(run=run_message(run, self._bounds))

    async def StreamAgentRun(
        self, request: agent_service_pb2.StreamAgentRunRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[agent_service_pb2.StreamAgentRunResponse]:
        options = RunOptions(
            max_files=request.options.max_files,
            disable_llm=request.options.disable_llm,
            idempotency_key=request.options.idempotency_key,
        )
        reports: asyncio.Queue[ProgressReport | None] = asyncio.Queue()
        run = asyncio.create_task(
            self._runner.run(request.name, from_struct(request.input), options, caller(context), reports.put_nowait)
        )
        run.add_done_callback(lambda _: reports.put_nowait(None))  # after every report the run made
        try:
            while (report := await reports.get()) is not None:
                yield agent_service_pb2.StreamAgentRunResponse(progress=agent_service_pb2.AgentProgress(
                    stage=report.stage, fraction=report.fraction, items_done=report.done, items_total=report.total))
            finished = await run  # the run's error, if it failed, ends the stream with its status
            yield agent_service_pb2.StreamAgentRunResponse(run=run_message(finished, self._bounds))
        finally:
            if not run.done():  # the caller went away: the run (and its worker thread) stops
                run.cancel()
                await asyncio.gather(run, return_exceptions=True)

    async def GetAgentRun(
        self, request: agent_service_pb2.GetAgentRunRequest, context: grpc.aio.ServicerContext
    ) -> agent_service_pb2.GetAgentRunResponse:
        return agent_service_pb2.GetAgentRunResponse(run=run_message(await self._runner.get_run(request.id), self._bounds))

    async def ListAgentRunFindings(
        self, request: agent_service_pb2.ListAgentRunFindingsRequest, context: grpc.aio.ServicerContext
    ) -> agent_service_pb2.ListAgentRunFindingsResponse:
        page = Page.of(request.page_size, request.page_token, default=100, maximum=1000)
        findings, total = await self._runner.findings(request.id, page.offset, page.size)
        return agent_service_pb2.ListAgentRunFindingsResponse(
            findings=[finding_message(f) for f in findings],
            next_page_token=page.next_token(page.offset + page.size < total),
            total_size=total,
        )
