"""A small REST client of the edge: workflows, tools and health, with the CLI's headers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx

CLIENT_VERSION = "0.1.0"


class ApiError(Exception):
    """An error answer of the edge, with its HTTP status and google.rpc.Status body."""

    def __init__(self, status: int, body: Any) -> None:
        message = body.get("message", "") if isinstance(body, dict) else str(body)
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.body = body


class McpMeshClient:
    def __init__(self, base_url: str, api_key: str, *, client_type: str = "cli", verify: bool | str = True) -> None:
        headers = {"X-Client-Type": client_type, "X-Client-Version": CLIENT_VERSION}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._http = httpx.Client(base_url=base_url, headers=headers, timeout=httpx.Timeout(30.0, read=330.0), verify=verify)

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self._http.request(method, path, **kwargs)
        try:
            body = response.json()
        except ValueError:
            body = response.text
        if response.status_code >= 400:
            raise ApiError(response.status_code, body)
        return body

    def create_workflow(self, workflow_type: str, parameters: dict[str, Any], request_id: str = "") -> dict[str, Any]:
        params = {"requestId": request_id} if request_id else None
        return self._call("POST", "/v1/workflows", json={"type": workflow_type, "parameters": parameters}, params=params)["workflow"]

    def get_workflow(self, workflow_id: str) -> dict[str, Any]:
        return self._call("GET", f"/v1/workflows/{workflow_id}")["workflow"]

    def watch_workflow(self, workflow_id: str, after_sequence: int = 0) -> Iterator[dict[str, Any]]:
        """Events as they happen (NDJSON over REST), until the workflow's final event."""
        params = {"afterSequence": after_sequence}
        with self._http.stream("GET", f"/v1/workflows/{workflow_id}:watch", params=params) as response:
            if response.status_code >= 400:
                response.read()
                raise ApiError(response.status_code, response.json())
            for line in response.iter_lines():
                if line.strip():
                    yield json.loads(line)["event"]

    def list_tools(self) -> list[dict[str, Any]]:
        tools: list[dict[str, Any]] = []
        token = ""
        while True:
            page = self._call("GET", "/v1/tools", params={"pageToken": token} if token else None)
            tools += page.get("tools", [])
            token = page.get("nextPageToken", "")
            if not token:
                return tools

    def execute_tool(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", f"/v1/tools/{name}/execute", json={"arguments": arguments})

    def system_health(self) -> dict[str, Any]:
        return self._call("GET", "/v1/system/health")
