"""MCP through the edge is traced: a tools/call at /mcp and the tools service's call to the external MCP server it
reaches are spans of the caller's trace (collected by the tests' OTLP receiver)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from services.launcher.processes import LocalMesh
from tests.conftest import start_mesh, wait_until
from tests.integration.mcp_servers import TIME_SERVER, require
from tests.otlp_receiver import Receiver, Span


@pytest.fixture(scope="module")
def traced_mcp_mesh(tmp_path_factory: pytest.TempPathFactory, sample_project: Path, receiver: Receiver) -> Iterator[LocalMesh]:
    require(TIME_SERVER, "mcp-server-time")
    mesh = start_mesh(tmp_path_factory.mktemp("traced-mcp"), sample_project.parent, MCPMESH_OTLP_ENDPOINT=receiver.endpoint,
                      OTEL_BSP_SCHEDULE_DELAY="200", MCPMESH_TRACE_SAMPLE="1", MCPMESH_MCP_STDIO_COMMANDS=TIME_SERVER)
    try:
        registered = httpx.post(f"{mesh.edge_url}/v1/mcp-servers", headers={"Authorization": f"Bearer {mesh.admin_key()}"},
                                json={"name": "time", "transport": "MCP_TRANSPORT_STDIO", "command": [TIME_SERVER]}, timeout=60)
        assert registered.status_code == 200, registered.text
        yield mesh
    finally:
        mesh.stop()


async def test_an_mcp_tool_call_is_one_trace_down_to_the_external_server(traced_mcp_mesh: LocalMesh, receiver: Receiver) -> None:
    trace_id = secrets.token_hex(16)
    headers = {"Authorization": f"Bearer {traced_mcp_mesh.admin_key()}", "traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"}
    async with Client(streamable_http_client(f"{traced_mcp_mesh.edge_url}/mcp",
                                             http_client=httpx2.AsyncClient(headers=headers, timeout=60))) as client:
        result = await client.call_tool("time.get_current_time", {"timezone": "Asia/Tokyo"})
    assert not result.is_error

    def tools_spans() -> dict[str, Span] | None:
        spans = {s.name: s for s in receiver.trace(trace_id) if s.service == "mcpmesh-tools"}
        return spans if {"mcp.request", "mcp.call"} <= set(spans) else None

    spans = wait_until(tools_spans, 30, f"the MCP spans of trace {trace_id}")
    by_id = {s.span_id: s for s in receiver.trace(trace_id)}

    def ancestors(span: Span) -> list[str]:
        names = []
        while span.parent_id in by_id:
            span = by_id[span.parent_id]
            names.append(span.name)
        return names

    # The /mcp request inside the CallMcp RPC; the external call inside the tool's execution, inside the request.
    assert "mcpmesh.tools.v1.ToolService/CallMcp" in ancestors(spans["mcp.request"])
    assert ancestors(spans["mcp.call"])[:1] == ["tool.execute"] and "mcp.request" in ancestors(spans["mcp.call"])
