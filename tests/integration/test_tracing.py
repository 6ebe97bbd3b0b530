"""One trace across Envoy and the services (a small OTLP/HTTP receiver collects what the mesh exports), and the metrics
each service exposes: Prometheus per RPC and the scaling gauges, and CloudWatch EMF lines."""

from __future__ import annotations

import functools
import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.launcher.processes import LocalMesh
from tests.conftest import start_mesh, wait_until
from tests.otlp_receiver import Receiver, Span


@pytest.fixture(scope="module")
def traced_mesh(tmp_path_factory: pytest.TempPathFactory, sample_project: Path, receiver: Receiver) -> Iterator[LocalMesh]:
    # Services export every 200 ms instead of every 5 s, so the test does not wait on batching; EMF every second.
    mesh = start_mesh(tmp_path_factory.mktemp("traced"), sample_project.parent,
                      MCPMESH_OTLP_ENDPOINT=receiver.endpoint, OTEL_BSP_SCHEDULE_DELAY="200", MCPMESH_TRACE_SAMPLE="1",
                      MCPMESH_EMF_NAMESPACE="mcpmesh", MCPMESH_EMF_SECONDS="1")
    yield mesh
    mesh.stop()


def test_one_trace_links_edge_gateway_workflows_agents_and_tools(
    traced_mesh: LocalMesh, receiver: Receiver, sample_project: Path
) -> None:
    trace_id = secrets.token_hex(16)
    headers = {"Authorization": f"Bearer {traced_mesh.admin_key()}", "traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"}
    with httpx.Client(base_url=traced_mesh.edge_url, headers=headers, timeout=60) as rest:
        created = rest.post("/v1/workflows", json={"type": "code_analysis", "parameters": {"path": str(sample_project)}})
        assert created.status_code == 200, created.text
        workflow_id = created.json()["workflow"]["id"]
        assert created.json()["workflow"]["traceId"] == trace_id  # the record keeps the trace that created it
        wait_until(lambda: rest.get(f"/v1/workflows/{workflow_id}").json()["workflow"]["state"] == "WORKFLOW_STATE_SUCCEEDED",
                   90, "the workflow to succeed")
        assert rest.get(f"/v1/workflows/{workflow_id}").json()["workflow"]["traceId"] == trace_id

    wanted = {"envoy-edge", "envoy-mesh", "mcpmesh-gateway", "mcpmesh-workflows", "mcpmesh-agents", "mcpmesh-tools"}

    def one_tree() -> list[Span] | None:
        """Every service is in the trace, and every span but the caller's root has its parent there too."""
        spans = receiver.trace(trace_id)
        ids = {s.span_id for s in spans}
        roots = {s.parent_id for s in spans if s.parent_id not in ids}
        return spans if wanted <= {s.service for s in spans} and len(roots) == 1 else None

    # Envoy flushes its spans every 5 s.
    spans = wait_until(one_tree, 30, f"one tree of spans from {sorted(wanted)} in trace {trace_id}")
    names = {(s.service, s.name) for s in spans}
    assert ("mcpmesh-workflows", "mcpmesh.workflows.v1.WorkflowService/CreateWorkflow") in names
    # Workflows runs an agent by a unary call or a server stream; either way its client span (the stream's too: a
    # grpc.aio interceptor per call kind) is the parent of the agents service's span, in the one tree checked above.
    agent_calls = {name for service, name in names if service == "mcpmesh-agents" and "AgentService/" in name}
    assert agent_calls & {"mcpmesh.agents.v1.AgentService/RunAgent", "mcpmesh.agents.v1.AgentService/StreamAgentRun"}
    assert {("mcpmesh-workflows", name) for name in agent_calls} <= names
    assert ("mcpmesh-tools", "mcpmesh.tools.v1.ToolService/ExecuteTool") in names
    # Inside the services: the LangGraph steps, the agent's run and the tool's execution.
    assert {("mcpmesh-workflows", "workflow.step"), ("mcpmesh-agents", "agent.run"), ("mcpmesh-tools", "tool.execute")} <= names
    assert ("mcpmesh-workflows", "workflow.run") in names  # the background run, a child of CreateWorkflow


def _scrape(mesh: LocalMesh, name: str) -> str:
    response = httpx.get(mesh.metrics_url(name), timeout=5)
    assert response.status_code == 200
    return response.text


def test_prometheus_counts_each_rpc_and_shows_the_scaling_gauges(traced_mesh: LocalMesh) -> None:
    with httpx.Client(base_url=traced_mesh.edge_url, headers={"Authorization": f"Bearer {traced_mesh.admin_key()}"}) as rest:
        assert rest.get("/v1/tools").status_code == 200
        assert rest.get("/v1/workflows/no-such-workflow").status_code == 404
    tools = _scrape(traced_mesh, "tools")
    assert 'mcpmesh_rpc_requests_total{code="OK",method="/mcpmesh.tools.v1.ToolService/ListTools",service="tools"}' in tools
    assert 'mcpmesh_rpc_duration_seconds_bucket{le="0.005",method="/mcpmesh.tools.v1.ToolService/ListTools"' in tools
    assert 'ToolExecutionQueue{service="tools"}' in tools
    workflows = _scrape(traced_mesh, "workflows")
    assert 'code="NOT_FOUND",method="/mcpmesh.workflows.v1.WorkflowService/GetWorkflow"' in workflows
    assert 'ActiveWorkflows{service="workflows"}' in workflows
    assert 'ActiveAgentExecutions{service="agents"}' in _scrape(traced_mesh, "agents")


def test_cloudwatch_emf_lines_carry_the_scaling_metrics(traced_mesh: LocalMesh) -> None:
    def emf(name: str) -> list[dict]:
        lines = (traced_mesh.logs / f"{name}.log").read_text().splitlines()
        return [json.loads(line) for line in lines if line.startswith('{"_aws"')]

    for name, metric in [("agents", "ActiveAgentExecutions"), ("tools", "ToolExecutionQueue"), ("workflows", "ActiveWorkflows")]:
        [*_, last] = wait_until(functools.partial(emf, name), 10, f"an EMF line from {name}")
        [directive] = last["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == "mcpmesh" and directive["Dimensions"] == [["Service"]]
        assert {m["Name"] for m in directive["Metrics"]} >= {metric, "Requests", "Errors", "Latency"}
        assert last["Service"] == name and isinstance(last[metric], float)
