"""The main flow through real Envoy: POST /v1/workflows, watch it to completion, check the merged result."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx

from clients.rest import McpMeshClient
from services.launcher.processes import LocalMesh
from tests.conftest import SAMPLE_FILES


def _watch(rest: httpx.Client, workflow_id: str, after: int = 0) -> list[dict]:
    events = []
    with rest.stream("GET", f"/v1/workflows/{workflow_id}:watch", params={"afterSequence": after}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/json")
        for line in response.iter_lines():
            if line.strip():
                events.append(json.loads(line)["event"])
    return events


def test_code_analysis_over_rest_holds_findings_and_inventory(rest: httpx.Client, sample_project: Path) -> None:
    created = rest.post("/v1/workflows", json={"type": "code_analysis", "parameters": {"path": str(sample_project)}})
    assert created.status_code == 200, created.text
    workflow = created.json()["workflow"]
    assert workflow["state"] in {"WORKFLOW_STATE_PENDING", "WORKFLOW_STATE_RUNNING"}
    assert workflow["type"] == "code_analysis"

    events = _watch(rest, workflow["id"])
    assert [int(e["sequence"]) for e in events] == list(range(1, len(events) + 1))
    assert events[0]["type"] == "WORKFLOW_EVENT_TYPE_CREATED"
    assert events[-1]["type"] == "WORKFLOW_EVENT_TYPE_SUCCEEDED"
    started = {e["step"] for e in events if e["type"] == "WORKFLOW_EVENT_TYPE_STEP_STARTED"}
    assert started == {"analyze_code", "inventory_files", "merge"}
    # The two first steps run in parallel: both start before either finishes.
    kinds = [(e["type"], e["step"]) for e in events]
    first_done = min(i for i, (t, _) in enumerate(kinds) if t == "WORKFLOW_EVENT_TYPE_STEP_SUCCEEDED")
    assert {s for t, s in kinds[:first_done] if t == "WORKFLOW_EVENT_TYPE_STEP_STARTED"} == {"analyze_code", "inventory_files"}

    final = rest.get(f"/v1/workflows/{workflow['id']}").json()["workflow"]
    assert final["state"] == "WORKFLOW_STATE_SUCCEEDED"
    assert final["progressPercent"] == 100
    assert all(step["state"] == "WORKFLOW_STATE_SUCCEEDED" for step in final["steps"])
    result = final["result"]

    found = {(f["rule_id"], f["file"], f["line"]) for f in result["findings"]}
    assert found == {  # the Code Analyzer's own tools: bandit, ruff, detect-secrets
        ("B404", "app/main.py", 1),  # import subprocess
        ("B006", "app/main.py", 3),  # mutable default
        ("B307", "app/main.py", 5),  # eval
        ("E722", "app/main.py", 6),  # bare except
        ("B602", "app/main.py", 10),  # shell=True
        ("SECRET-KEYWORD", "app/settings.py", 1),  # API_KEY = "..."
    }
    assert result["finding_counts"]["high"] == 2

    inventory = result["inventory"]
    assert inventory["total_files"] == 5
    assert inventory["total_lines"] == sum(text.count("\n") for text in SAMPLE_FILES.values())
    languages = {entry["language"]: (entry["files"], entry["lines"]) for entry in inventory["languages"]}
    assert languages == {"Python": (3, 17), "JavaScript": (1, 2), "Markdown": (1, 3)}
    assert result["code_stats"]["files_analyzed"] == 4  # three Python files and one JavaScript file


def test_watch_resumes_after_a_sequence_number(rest: httpx.Client, sample_project: Path) -> None:
    workflow = rest.post("/v1/workflows", json={"type": "code_analysis", "parameters": {"path": str(sample_project)}}).json()["workflow"]
    everything = _watch(rest, workflow["id"])
    tail = _watch(rest, workflow["id"], after=len(everything) - 2)
    assert tail == everything[-2:]


def test_request_id_makes_create_idempotent(rest: httpx.Client, sample_project: Path) -> None:
    body = {"type": "code_analysis", "parameters": {"path": str(sample_project)}}
    first = rest.post("/v1/workflows", params={"requestId": "same-request"}, json=body).json()["workflow"]
    second = rest.post("/v1/workflows", params={"requestId": "same-request"}, json=body).json()["workflow"]
    assert first["id"] == second["id"]
    assert _watch(rest, first["id"])[-1]["type"] == "WORKFLOW_EVENT_TYPE_SUCCEEDED"


def test_list_filters_by_state_and_paginates(rest: httpx.Client, mesh: LocalMesh, admin_key: str, sample_project: Path) -> None:
    client = McpMeshClient(mesh.edge_url, admin_key)
    ids = [client.create_workflow("code_analysis", {"path": str(sample_project)})["id"] for _ in range(3)]
    for workflow_id in ids:
        list(client.watch_workflow(workflow_id))
    client.close()
    page = rest.get("/v1/workflows", params={"pageSize": 2, "state": "WORKFLOW_STATE_SUCCEEDED"}).json()
    assert len(page["workflows"]) == 2 and page["nextPageToken"]
    assert all(w["state"] == "WORKFLOW_STATE_SUCCEEDED" for w in page["workflows"])
    following = rest.get("/v1/workflows", params={"pageSize": 2, "pageToken": page["nextPageToken"]}).json()
    assert not {w["id"] for w in following["workflows"]} & {w["id"] for w in page["workflows"]}


def test_path_outside_the_workspace_is_refused_at_creation(rest: httpx.Client, tmp_path: Path) -> None:
    before = rest.get("/v1/workflows", params={"pageSize": 100}).json()["workflows"]
    outside = tmp_path  # not under the mesh's workspace root
    refused = rest.post("/v1/workflows", json={"type": "code_analysis", "parameters": {"path": str(outside)}})
    assert refused.status_code == 400, refused.text
    body = refused.json()
    assert "workflow.parameters.path" in body["message"]
    reasons = [d.get("reason") for d in body.get("details", [])]
    assert "PATH_OUTSIDE_WORKSPACE" in reasons
    violations = [v for d in body["details"] for v in d.get("fieldViolations", [])]
    assert [v["field"] for v in violations] == ["workflow.parameters.path"]
    # Nothing was stored: the list is what it was.
    after = rest.get("/v1/workflows", params={"pageSize": 100}).json()["workflows"]
    assert [w["id"] for w in after] == [w["id"] for w in before]


def test_tools_list_and_execute_over_rest(rest: httpx.Client, sample_project: Path) -> None:
    tools = rest.get("/v1/tools").json()["tools"]
    assert [t["name"] for t in tools] == ["file_inventory", "file_stats", "list_files", "read_file", "search_files"]
    executed = rest.post("/v1/tools/file_inventory/execute", json={"arguments": {"path": str(sample_project)}})
    assert executed.status_code == 200, executed.text
    assert executed.json()["result"]["total_files"] == 5


def test_watch_of_a_finished_workflow_replays_and_ends(rest: httpx.Client, sample_project: Path) -> None:
    created = rest.post("/v1/workflows", json={"type": "code_analysis", "parameters": {"path": str(sample_project)}})
    workflow_id = created.json()["workflow"]["id"]
    first = _watch(rest, workflow_id)  # follows the run to its end
    assert first[-1]["type"] == "WORKFLOW_EVENT_TYPE_SUCCEEDED"
    started = time.monotonic()
    again = _watch(rest, workflow_id)  # the run has ended: replay, then the stream closes at once
    assert time.monotonic() - started < 5
    assert [e["sequence"] for e in again] == [e["sequence"] for e in first]
    tail = _watch(rest, workflow_id, after=int(first[-2]["sequence"]))
    assert [e["sequence"] for e in tail] == [first[-1]["sequence"]]
