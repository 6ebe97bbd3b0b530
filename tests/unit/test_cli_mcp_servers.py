"""The CLI's MCP server and approval commands against a stub edge: the REST calls they make, and one-line errors."""

from __future__ import annotations

import json

from tests.unit.stub_edge import Answer, StubEdge, stub_edge
from tests.unit.test_cli_errors import cli, one_line

TOOLS = ["time.convert_time", "time.get_current_time"]
SERVER = {"name": "time", "transport": "MCP_TRANSPORT_STDIO", "command": ["/opt/mcp-server-time"], "tools": TOOLS,
          "state": "MCP_SERVER_STATE_CONNECTED", "lastError": ""}
HASH = "a" * 64


def _bodies(edge: StubEdge, method: str, path: str) -> list[dict[str, object]]:
    return [json.loads(body) for m, p, _, body in edge.requests if (m, p) == (method, path)]


def test_register_a_stdio_command_after_the_separator() -> None:
    with stub_edge({"POST /v1/mcp-servers": Answer(200, {"server": SERVER})}) as edge:
        done = cli(edge.url, "mcp-servers", "register", "time", "--", "/opt/mcp-server-time", "--local-timezone", "UTC")
        sent = _bodies(edge, "POST", "/v1/mcp-servers")
    assert done.returncode == 0, done.stderr
    assert sent == [{"name": "time", "transport": "MCP_TRANSPORT_STDIO",
                     "command": ["/opt/mcp-server-time", "--local-timezone", "UTC"]}]
    assert done.stdout.splitlines() == ["time connected: 2 tools", *TOOLS]


def test_register_a_url_prints_json() -> None:
    answer = {**SERVER, "transport": "MCP_TRANSPORT_STREAMABLE_HTTP", "command": [], "url": "https://tools.example/mcp"}
    with stub_edge({"POST /v1/mcp-servers": Answer(200, {"server": answer})}) as edge:
        done = cli(edge.url, "mcp-servers", "register", "remote", "--url", "https://tools.example/mcp", "--json")
        sent = _bodies(edge, "POST", "/v1/mcp-servers")
    assert done.returncode == 0, done.stderr
    assert sent == [{"name": "remote", "transport": "MCP_TRANSPORT_STREAMABLE_HTTP", "url": "https://tools.example/mcp"}]
    assert json.loads(done.stdout)["url"] == "https://tools.example/mcp"


def test_register_needs_exactly_one_of_command_and_url() -> None:
    for args in (["x"], ["x", "--url", "https://a.example/mcp", "--", "/bin/true"]):
        done = cli("http://127.0.0.1:9", "mcp-servers", "register", *args)
        assert done.returncode == 2
        assert "either as a stdio command after `--`" in one_line(done)


def test_list_and_remove() -> None:
    answers = {"GET /v1/mcp-servers": Answer(200, {"servers": [SERVER]}), "DELETE /v1/mcp-servers/time": Answer(200, {})}
    with stub_edge(answers) as edge:
        listed = cli(edge.url, "mcp-servers", "list", extra={"COLUMNS": "200"})
        as_json = cli(edge.url, "mcp-servers", "list", "--json")
        removed = cli(edge.url, "mcp-servers", "remove", "time", "--json")
    assert listed.returncode == 0, listed.stderr
    [row] = [line for line in listed.stdout.splitlines() if "time" in line]
    assert "stdio" in row and "/opt/mcp-server-time" in row and "connected" in row
    assert json.loads(as_json.stdout) == [SERVER]
    assert json.loads(removed.stdout) == {"name": "time", "removed": True}


def test_remove_an_unknown_server_is_one_line() -> None:
    body = {"code": 5, "message": "MCP server 'nope' is not registered", "details": []}
    with stub_edge({"DELETE /v1/mcp-servers/nope": Answer(404, body)}) as edge:
        done = cli(edge.url, "mcp-servers", "remove", "nope")
    assert done.returncode == 2
    assert "not found (HTTP 404): MCP server 'nope' is not registered" in one_line(done)


def test_approve_sends_the_reviewed_hash() -> None:
    tool = {"name": "time.get_current_time", "definitionHash": HASH, "definitionState": "DEFINITION_STATE_APPROVED"}
    with stub_edge({"POST /v1/tools/time.get_current_time:approve": Answer(200, {"tool": tool})}) as edge:
        done = cli(edge.url, "tools", "approve", "time.get_current_time", HASH)
        sent = _bodies(edge, "POST", "/v1/tools/time.get_current_time:approve")
    assert done.returncode == 0, done.stderr
    assert sent == [{"definitionHash": HASH}]
    assert done.stdout.strip() == f"time.get_current_time approved (definition {HASH})"


def test_approve_refuses_what_is_not_a_hash_before_calling() -> None:
    done = cli("http://127.0.0.1:9", "tools", "approve", "time.get_current_time", "latest")
    assert done.returncode == 2
    assert "HASH 'latest': expected the 64 hex digits" in one_line(done)


def test_get_shows_a_changed_definition_and_how_to_approve_it() -> None:
    tool = {"name": "time.get_current_time", "description": "Now.", "server": "time", "definitionHash": HASH,
            "definitionState": "DEFINITION_STATE_CHANGED", "inputSchema": {"type": "object"}}
    with stub_edge({"GET /v1/tools/time.get_current_time": Answer(200, {"tool": tool})}) as edge:
        done = cli(edge.url, "tools", "get", "time.get_current_time", extra={"COLUMNS": "200"})
    assert done.returncode == 0, done.stderr
    assert f"from MCP server time; definition changed, hash {HASH}" in done.stdout
    assert f"mcpmesh tools approve time.get_current_time {HASH}" in done.stdout


def test_grant_revoke_and_list_tool_permissions() -> None:
    grant = {"tool": "time.*", "principal": "role:viewer", "createTime": "2026-12-06T18:00:00Z"}
    answers = {"POST /v1/tool-permissions": Answer(200, {"permission": grant}),
               "POST /v1/tool-permissions:revoke": Answer(200, {}),
               "GET /v1/tool-permissions": Answer(200, {"permissions": [grant]})}
    with stub_edge(answers) as edge:
        granted = cli(edge.url, "tools", "grant", "time.*", "role:viewer")
        listed = cli(edge.url, "tools", "permissions", "--tool", "time.*", "--json")
        revoked = cli(edge.url, "tools", "revoke", "time.*", "role:viewer")
        sent = _bodies(edge, "POST", "/v1/tool-permissions") + _bodies(edge, "POST", "/v1/tool-permissions:revoke")
        queries = [path for method, path, _, _ in edge.requests if method == "GET"]
    assert granted.stdout.strip() == "role:viewer may execute time.*", granted.stderr
    assert json.loads(listed.stdout) == [grant] and queries == ["/v1/tool-permissions"]
    assert revoked.stdout.strip() == "role:viewer no longer granted time.*", revoked.stderr
    assert sent == [{"tool": "time.*", "principal": "role:viewer"}] * 2


def test_list_flags_a_changed_definition() -> None:
    tools = [{"name": "read_file", "description": "Reads lines."},
             {"name": "time.now", "description": "Now.", "definitionState": "DEFINITION_STATE_CHANGED"}]
    with stub_edge({"GET /v1/tools": Answer(200, {"tools": tools})}) as edge:
        done = cli(edge.url, "tools", "list")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"{'read_file':<24} Reads lines.",
                                        f"{'time.now':<24} [changed: not run until approved] Now."]
