"""A small REST client of the edge (workflows, tools, MCP servers, agents, keys, health, metrics), with the CLI's headers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from clients.credentials import ApiKeyAuth, TokenFile

# The installed package's version (pyproject.toml), sent as X-Client-Version.
try:
    CLIENT_VERSION = metadata.version("mcpmesh")
except metadata.PackageNotFoundError:  # run from a source tree that is not installed
    CLIENT_VERSION = "0.0.0"


class ApiError(Exception):
    """An error answer of the edge, with its HTTP status, google.rpc.Status body and Retry-After (seconds, if sent)."""

    def __init__(self, status: int, body: Any, retry_after: str = "") -> None:
        message = body.get("message", "") if isinstance(body, dict) else str(body)
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.body = body
        self.message = message
        self.retry_after = retry_after


def _error(response: httpx.Response) -> ApiError:
    try:
        body = response.json()
    except ValueError:
        body = response.text.strip()
    return ApiError(response.status_code, body, response.headers.get("retry-after", ""))


class McpMeshClient:
    def __init__(
        self, base_url: str, api_key: str, *, client_type: str = "cli", verify: bool | str = True, exchange: bool = True,
        token_cache: Path | None = None,
    ) -> None:
        headers = {"X-Client-Type": client_type, "X-Client-Version": CLIENT_VERSION}
        cache = TokenFile(token_cache, base_url, api_key) if token_cache else None
        self.auth = ApiKeyAuth(api_key, exchange=exchange, cache=cache)
        self._http = httpx.Client(
            base_url=base_url, headers=headers, auth=self.auth, timeout=httpx.Timeout(30.0, read=330.0), verify=verify
        )

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self._http.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise _error(response)
        try:
            body = response.json()
        except ValueError as error:
            raise ApiError(response.status_code, f"the edge answered with no JSON: {response.text[:80]!r}") from error
        return body if isinstance(body, dict) else {"value": body}

    def _pages(self, path: str, field: str, params: dict[str, Any] | None = None, limit: int = 0) -> list[dict[str, Any]]:
        """Every page of an AIP list (or the first `limit` items)."""
        items: list[dict[str, Any]] = []
        query = dict(params or {})
        while True:
            page = self._call("GET", path, params=query)
            items += page.get(field, [])
            query["pageToken"] = page.get("nextPageToken", "")
            if not query["pageToken"] or (limit and len(items) >= limit):
                return items[:limit] if limit else items

    def _stream(self, path: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """A server stream over REST: one JSON message per line (NDJSON) as it comes."""
        with self._http.stream("GET", path, params=params) as response:
            if response.status_code >= 400:
                response.read()
                raise _error(response)
            for line in response.iter_lines():
                if line.strip():
                    message = json.loads(line)
                    if "error" in message and len(message) == 1:
                        raise ApiError(500, message["error"])
                    yield message

    # Workflows
    def list_workflow_types(self) -> list[dict[str, Any]]:
        return self._call("GET", "/v1/workflow-types").get("workflowTypes", [])

    def create_workflow(self, workflow_type: str, parameters: dict[str, Any], request_id: str = "") -> dict[str, Any]:
        params = {"requestId": request_id} if request_id else None
        return self._call("POST", "/v1/workflows", json={"type": workflow_type, "parameters": parameters}, params=params)["workflow"]

    def get_workflow(self, workflow_id: str) -> dict[str, Any]:
        return self._call("GET", f"/v1/workflows/{workflow_id}")["workflow"]

    def list_workflows(self, state: str = "", limit: int = 0) -> list[dict[str, Any]]:
        return self._pages("/v1/workflows", "workflows", {"state": state} if state else None, limit)

    def cancel_workflow(self, workflow_id: str) -> dict[str, Any]:
        return self._call("POST", f"/v1/workflows/{workflow_id}:cancel", json={})["workflow"]

    def watch_workflow(self, workflow_id: str, after_sequence: int = 0) -> Iterator[dict[str, Any]]:
        """Events as they happen (NDJSON over REST), until the workflow's final event."""
        for message in self._stream(f"/v1/workflows/{workflow_id}:watch", {"afterSequence": after_sequence}):
            yield message["event"]

    # Tools
    def list_tools(self) -> list[dict[str, Any]]:
        return self._pages("/v1/tools", "tools")

    def get_tool(self, name: str) -> dict[str, Any]:
        return self._call("GET", f"/v1/tools/{name}")["tool"]

    def execute_tool(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", f"/v1/tools/{name}/execute", json={"arguments": arguments})

    def approve_tool(self, name: str, definition_hash: str) -> dict[str, Any]:
        return self._call("POST", f"/v1/tools/{quote(name, safe='')}:approve", json={"definitionHash": definition_hash})["tool"]

    def grant_tool_permission(self, tool: str, principal: str) -> dict[str, Any]:
        return self._call("POST", "/v1/tool-permissions", json={"tool": tool, "principal": principal})["permission"]

    def revoke_tool_permission(self, tool: str, principal: str) -> dict[str, Any]:
        return self._call("POST", "/v1/tool-permissions:revoke", json={"tool": tool, "principal": principal})

    def list_tool_permissions(self, tool: str = "") -> list[dict[str, Any]]:
        return self._pages("/v1/tool-permissions", "permissions", {"tool": tool} if tool else None)

    # External MCP servers
    def register_mcp_server(self, name: str, command: list[str], url: str) -> dict[str, Any]:
        if url:
            server: dict[str, Any] = {"name": name, "transport": "MCP_TRANSPORT_STREAMABLE_HTTP", "url": url}
        else:
            server = {"name": name, "transport": "MCP_TRANSPORT_STDIO", "command": command}
        return self._call("POST", "/v1/mcp-servers", json=server)["server"]

    def list_mcp_servers(self) -> list[dict[str, Any]]:
        return self._pages("/v1/mcp-servers", "servers")

    def remove_mcp_server(self, name: str) -> dict[str, Any]:
        return self._call("DELETE", f"/v1/mcp-servers/{quote(name, safe='')}")

    # Agents
    def list_agents(self) -> list[dict[str, Any]]:
        return self._pages("/v1/agents", "agents")

    def run_agent(self, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", f"/v1/agents/{name}:run", json={"input": inputs})["run"]

    # Keys
    def create_api_key(self, display_name: str, role: str) -> dict[str, Any]:
        return self._call("POST", "/v1/api-keys", json={"displayName": display_name, "role": role})

    def list_api_keys(self) -> list[dict[str, Any]]:
        return self._pages("/v1/api-keys", "apiKeys")

    def revoke_api_key(self, key_id: str) -> dict[str, Any]:
        return self._call("POST", f"/v1/api-keys/{key_id}:revoke", json={})["apiKey"]

    # System
    def whoami(self) -> dict[str, Any]:
        return self._call("GET", "/v1/whoami")

    def system_health(self) -> dict[str, Any]:
        return self._call("GET", "/v1/system/health")

    def system_metrics(self) -> dict[str, Any]:
        return self._call("GET", "/v1/system/metrics")
