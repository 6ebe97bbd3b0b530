"""The system as an MCP server at /mcp on the edge: the official MCP client and the MCP inspector CLI see the
tools their key may use, built-in and external (mcp-server-time registered over REST), and call them."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from services.launcher.processes import LocalMesh
from tests.conftest import start_mesh
from tests.integration.mcp_servers import INSPECTOR, TIME_SERVER, require
from tests.integration.test_cli import _cli


@pytest.fixture(scope="module")
def mcp_mesh(tmp_path_factory: pytest.TempPathFactory, sample_project: Path) -> Iterator[LocalMesh]:
    require(TIME_SERVER, "mcp-server-time")
    running = start_mesh(
        tmp_path_factory.mktemp("mcp-mesh"), sample_project.parent,
        MCPMESH_MCP_STDIO_COMMANDS=TIME_SERVER, MCPMESH_MCP_ALLOWED_NETWORKS="127.0.0.1",
    )
    try:
        admin = {"Authorization": f"Bearer {running.admin_key()}"}
        registered = httpx.post(
            f"{running.edge_url}/v1/mcp-servers", headers=admin, timeout=60,
            json={"name": "time", "transport": "MCP_TRANSPORT_STDIO", "command": [TIME_SERVER, "--local-timezone", "UTC"]},
        )
        assert registered.status_code == 200, registered.text
        assert registered.json()["server"]["state"] == "MCP_SERVER_STATE_CONNECTED"
        yield running
    finally:
        running.stop()


def _key(mesh: LocalMesh, role: str) -> str:
    created = httpx.post(
        f"{mesh.edge_url}/v1/api-keys", headers={"Authorization": f"Bearer {mesh.admin_key()}"}, timeout=30,
        json={"displayName": f"mcp-{role}", "role": f"ROLE_{role.upper()}"},
    )
    assert created.status_code == 200, created.text
    return str(created.json()["secret"])


def _client(mesh: LocalMesh, key: str) -> Client:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=60)
    return Client(streamable_http_client(f"{mesh.edge_url}/mcp", http_client=http))


async def test_official_client_lists_and_calls_builtin_and_external_tools(mcp_mesh: LocalMesh, sample_project: Path) -> None:
    async with _client(mcp_mesh, mcp_mesh.admin_key()) as client:
        listed = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert {"file_inventory", "read_file", "time.get_current_time", "time.convert_time"} <= set(listed)
        hints = listed["read_file"].annotations
        assert hints is not None and hints.read_only_hint and not hints.destructive_hint
        now = await client.call_tool("time.get_current_time", {"timezone": "Asia/Tokyo"})
        assert not now.is_error and now.structured_content is not None
        assert now.structured_content["timezone"] == "Asia/Tokyo"
        stats = await client.call_tool("file_stats", {"path": str(sample_project)})
        assert not stats.is_error and stats.structured_content is not None and stats.structured_content["files"] == 5
        outside = await client.call_tool("read_file", {"path": "/etc/passwd"})
        assert outside.is_error and "outside the workspace" in json.dumps([c.model_dump() for c in outside.content])


async def test_a_viewer_key_sees_and_runs_nothing_by_default(mcp_mesh: LocalMesh) -> None:
    async with _client(mcp_mesh, _key(mcp_mesh, "viewer")) as client:
        assert (await client.list_tools()).tools == []
        denied = await client.call_tool("file_stats", {"path": "."})
        assert denied.is_error and "may not execute" in json.dumps([c.model_dump() for c in denied.content])


async def test_without_a_key_mcp_is_refused(mcp_mesh: LocalMesh) -> None:
    response = httpx.post(
        f"{mcp_mesh.edge_url}/mcp", timeout=30,
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        headers={"Accept": "application/json, text/event-stream"},
    )
    assert response.status_code == 401


def _inspector(mesh: LocalMesh, key: str, *args: str) -> Any:
    node = shutil.which("node")
    assert node, "node is not installed"
    done = subprocess.run(
        [node, require(INSPECTOR, "@modelcontextprotocol/inspector-cli"), "--cli", f"{mesh.edge_url}/mcp",
         "--transport", "http", "--header", f"Authorization: Bearer {key}", *args],
        check=False, capture_output=True, text=True, timeout=120,
        # inspector-cli 1.0.3 looks for its package.json relative to the working folder: run it from its own.
        cwd=INSPECTOR.parent,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def test_inspector_cli_lists_and_calls(mcp_mesh: LocalMesh, sample_project: Path) -> None:
    key = mcp_mesh.admin_key()
    listed = _inspector(mcp_mesh, key, "--method", "tools/list")
    names = {tool["name"] for tool in listed["tools"]}
    assert {"file_inventory", "time.get_current_time"} <= names
    called = _inspector(
        mcp_mesh, key, "--method", "tools/call", "--tool-name", "time.convert_time",
        "--tool-arg", "source_timezone=UTC", "--tool-arg", "time=12:00", "--tool-arg", "target_timezone=Asia/Tokyo",
    )
    assert not called.get("isError") and "21:00" in json.dumps(called)


def test_servers_and_definitions_over_rest(mcp_mesh: LocalMesh) -> None:
    admin = httpx.Client(base_url=mcp_mesh.edge_url, headers={"Authorization": f"Bearer {mcp_mesh.admin_key()}"}, timeout=60)
    operator = httpx.Client(base_url=mcp_mesh.edge_url, headers={"Authorization": f"Bearer {_key(mcp_mesh, 'operator')}"}, timeout=60)
    with admin, operator:
        [server] = admin.get("/v1/mcp-servers").json()["servers"]
        assert server["name"] == "time" and sorted(server["tools"]) == ["time.convert_time", "time.get_current_time"]
        tool = admin.get("/v1/tools/time.get_current_time").json()["tool"]
        assert tool["source"] == "TOOL_SOURCE_EXTERNAL_MCP" and tool["server"] == "time"
        assert tool["definitionState"] == "DEFINITION_STATE_APPROVED" and tool["approvedHash"] == tool["definitionHash"]
        assert tool["annotations"]["readOnlyHint"] is True
        stale = admin.post("/v1/tools/time.get_current_time:approve", json={"definitionHash": "0" * 64})
        assert stale.status_code == 400 and "TOOL_DEFINITION_MISMATCH" in stale.text
        executed = operator.post("/v1/tools/time.get_current_time/execute", json={"arguments": {"timezone": "UTC"}})
        body = executed.json()
        assert executed.status_code == 200 and body["structuredContent"]["timezone"] == "UTC"
        assert body["content"][0]["type"] == "text" and body["isError"] is False
        refused = operator.post("/v1/mcp-servers", json={"name": "x", "transport": "MCP_TRANSPORT_STDIO", "command": ["id"]})
        assert refused.status_code == 403
        not_allowed = admin.post("/v1/mcp-servers", json={"name": "sh", "transport": "MCP_TRANSPORT_STDIO", "command": ["/bin/sh"]})
        assert not_allowed.status_code == 400 and "MCP_COMMAND_NOT_ALLOWED" in not_allowed.text
        ssrf = admin.post("/v1/mcp-servers", json={"name": "meta", "transport": "MCP_TRANSPORT_STREAMABLE_HTTP",
                                                    "url": "http://169.254.169.254/latest"})
        assert ssrf.status_code == 400 and "MCP_URL_FORBIDDEN" in ssrf.text


def test_single_tools_are_not_registered_one_by_one(mcp_mesh: LocalMesh) -> None:
    admin = {"Authorization": f"Bearer {mcp_mesh.admin_key()}"}
    known = httpx.post(f"{mcp_mesh.edge_url}/v1/tools", headers=admin, timeout=30,
                       json={"name": "time.now", "targetServer": "time"})
    assert known.status_code == 400 and known.json()["details"][0]["reason"] == "TOOLS_COME_FROM_SERVERS"
    assert "joined the registry as time.<tool>" in known.json()["message"] and "mcpmesh tools approve" in known.text
    unknown = httpx.post(f"{mcp_mesh.edge_url}/v1/tools", headers=admin, timeout=30,
                         json={"name": "docs.search", "targetServer": "docs"})
    assert unknown.status_code == 400 and unknown.json()["details"][0]["reason"] == "MCP_SERVER_NOT_FOUND"
    assert "mcpmesh mcp-servers register" in unknown.json()["message"]


def _one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: ")
    return line


def test_cli_registers_lists_approves_and_removes_servers(mcp_mesh: LocalMesh) -> None:
    registered = _cli(mcp_mesh, "mcp-servers", "register", "clock", "--json", "--", TIME_SERVER, "--local-timezone", "UTC")
    assert registered.returncode == 0, registered.stderr
    server = json.loads(registered.stdout)
    assert server["state"] == "MCP_SERVER_STATE_CONNECTED"
    assert sorted(server["tools"]) == ["clock.convert_time", "clock.get_current_time"]
    table = _cli(mcp_mesh, "mcp-servers", "list")
    [row] = [line for line in table.stdout.splitlines() if "clock" in line]
    assert "stdio" in row and "connected" in row and TIME_SERVER in row
    listed = json.loads(_cli(mcp_mesh, "mcp-servers", "list", "--json").stdout)
    assert {s["name"] for s in listed} == {"time", "clock"}

    shown = _cli(mcp_mesh, "tools", "get", "clock.get_current_time", "--json")
    tool = json.loads(shown.stdout)
    assert tool["definitionState"] == "DEFINITION_STATE_APPROVED"
    approved = _cli(mcp_mesh, "tools", "approve", "clock.get_current_time", tool["definitionHash"])
    assert approved.returncode == 0, approved.stderr
    assert approved.stdout.strip() == f"clock.get_current_time approved (definition {tool['definitionHash']})"
    stale = _one_line_error(_cli(mcp_mesh, "tools", "approve", "clock.get_current_time", "0" * 64))
    assert "HTTP 400" in stale and "not the tool's current definition" in stale

    not_allowed = _one_line_error(_cli(mcp_mesh, "mcp-servers", "register", "shell", "--", "/bin/sh", "-c", "id"))
    assert "server.command" in not_allowed and "allow list" in not_allowed
    metadata = _one_line_error(_cli(mcp_mesh, "mcp-servers", "register", "meta", "--url", "http://169.254.169.254/mcp"))
    assert "server.url" in metadata and "metadata" in metadata
    operator = _one_line_error(_cli(mcp_mesh, "mcp-servers", "register", "x", "--", TIME_SERVER, key=_key(mcp_mesh, "operator")))
    assert "permission denied (HTTP 403)" in operator

    removed = _cli(mcp_mesh, "mcp-servers", "remove", "clock")
    assert removed.returncode == 0 and removed.stdout.strip() == "clock removed", removed.stderr
    assert "not found (HTTP 404)" in _one_line_error(_cli(mcp_mesh, "mcp-servers", "remove", "clock"))
    assert [s["name"] for s in json.loads(_cli(mcp_mesh, "mcp-servers", "list", "--json").stdout)] == ["time"]


def test_cli_grants_and_revokes_tool_permissions(mcp_mesh: LocalMesh) -> None:
    created = httpx.post(f"{mcp_mesh.edge_url}/v1/api-keys", headers={"Authorization": f"Bearer {mcp_mesh.admin_key()}"},
                         json={"displayName": "cli-grants", "role": "ROLE_OPERATOR"}, timeout=30).json()
    principal, secret = f"key:{created['apiKey']['id']}", created["secret"]

    def listed_for_key() -> list[str]:
        done = _cli(mcp_mesh, "tools", "list", key=secret)
        assert done.returncode == 0, done.stderr
        return [line.split()[0] for line in done.stdout.splitlines()]

    assert "read_file" in listed_for_key()  # an operator with no grant runs every tool
    granted = _cli(mcp_mesh, "tools", "grant", "time.*", principal)
    assert granted.returncode == 0 and granted.stdout.strip() == f"{principal} may execute time.*", granted.stderr
    listed = json.loads(_cli(mcp_mesh, "tools", "permissions", "--tool", "time.*", "--json").stdout)
    assert [(p["tool"], p["principal"]) for p in listed] == [("time.*", principal)]
    assert listed_for_key() == ["time.convert_time", "time.get_current_time"]  # a grant narrows to what it matches
    executed = _cli(mcp_mesh, "tools", "execute", "time.get_current_time", "--arg", "timezone=UTC", "--json", key=secret)
    assert executed.returncode == 0 and json.loads(executed.stdout)["structuredContent"]["timezone"] == "UTC", executed.stderr
    denied = _one_line_error(_cli(mcp_mesh, "tools", "execute", "file_stats", "--arg", "path=.", key=secret))
    assert "permission denied (HTTP 403)" in denied and "may not execute tool 'file_stats'" in denied
    assert "permission denied (HTTP 403)" in _one_line_error(_cli(mcp_mesh, "tools", "grant", "*", principal, key=secret))
    revoked = _cli(mcp_mesh, "tools", "revoke", "time.*", principal)
    assert revoked.returncode == 0, revoked.stderr
    assert "read_file" in listed_for_key()
