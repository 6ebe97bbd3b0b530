"""Agents over the REST edge: POST /v1/agents/{name}:run, the run, its paged findings, idempotency, bad input."""

from __future__ import annotations

from pathlib import Path

import httpx


def test_code_analyzer_runs_over_rest_and_its_findings_page(rest: httpx.Client, sample_project: Path) -> None:
    body = {"input": {"path": str(sample_project), "formats": ["sarif"]}, "options": {"idempotencyKey": "rest-1"}}
    response = rest.post("/v1/agents/code-analyzer:run", json=body)
    assert response.status_code == 200, response.text
    run = response.json()["run"]
    assert run["state"] == "RUN_STATE_SUCCEEDED" and run["llmStatus"] == "LLM_STATUS_NOT_CONFIGURED"
    found = {(f["ruleId"], f["file"], f["line"], f["tool"]) for f in run["findings"]}
    assert ("B602", "app/main.py", 10, "bandit") in found and ("E722", "app/main.py", 6, "ruff") in found
    assert run["totalFindings"] == len(run["findings"]) == 6 and not run.get("findingsTruncated", False)
    assert {a["name"] for a in run["artifacts"]} == {"report.md", "findings.sarif"}

    first = rest.get(f"/v1/agent-runs/{run['id']}/findings", params={"pageSize": 4}).json()
    second = rest.get(f"/v1/agent-runs/{run['id']}/findings", params={"pageSize": 4, "pageToken": first["nextPageToken"]}).json()
    assert first["totalSize"] == 6 and len(first["findings"]) == 4 and len(second["findings"]) == 2
    assert "nextPageToken" not in second or not second["nextPageToken"]

    again = rest.post("/v1/agents/code-analyzer:run", json=body).json()["run"]
    assert again["id"] == run["id"]
    reused = rest.post("/v1/agents/code-analyzer:run", json={**body, "input": {"path": str(sample_project / "app")}})
    assert reused.status_code == 400  # FAILED_PRECONDITION: the key was used with another request
    assert "IDEMPOTENCY_KEY_REUSED" in reused.text


def test_agent_input_is_checked_at_the_edge(rest: httpx.Client, tmp_path: Path) -> None:
    outside = rest.post("/v1/agents/code-analyzer:run", json={"input": {"path": str(tmp_path)}})
    assert outside.status_code == 400 and "input.path" in outside.text
    unknown = rest.post("/v1/agents/code-analyzer:run", json={"input": {"path": "x", "colour": "red"}})
    assert unknown.status_code == 400 and "input.colour" in unknown.text


def test_a_larger_project_goes_through_the_services_worker_processes(rest: httpx.Client, sample_project: Path) -> None:
    project = sample_project.parent / "larger"
    project.mkdir(exist_ok=True)
    for i in range(12):  # above the size analysed in the calling thread
        (project / f"m{i}.py").write_text(f"import pickle\n\n\ndef load{i}(blob):\n    return pickle.loads(blob)\n")
    response = rest.post("/v1/agents/code-analyzer:run", json={"input": {"path": str(project)}})
    assert response.status_code == 200, response.text
    found = sorted((f["ruleId"], f["file"], f["line"]) for f in response.json()["run"]["findings"])
    assert found == sorted([("B403", f"m{i}.py", 1) for i in range(12)] + [("B301", f"m{i}.py", 5) for i in range(12)])
