"""Workflows instances behind real Envoy: one killed with SIGKILL mid-run, the other finishes the run; the only
instance killed and restarted resumes it. Each step's side effect happens once and the event log is complete."""

from __future__ import annotations

import json
import signal
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.launcher.processes import LocalMesh
from tests.conftest import SAMPLE_FILES, start_mesh, wait_until, write_sample_project

LEASE_SECONDS = "2"
STEPS = ["analyze_code", "inventory_files", "merge"]
TERMINAL = {"WORKFLOW_STATE_SUCCEEDED", "WORKFLOW_STATE_FAILED", "WORKFLOW_STATE_CANCELLED"}


def write_large_project(root: Path, files: int = 300) -> Path:
    """The sample project plus enough plain modules that the analysis is still running when an instance is killed.

    Their text names the project: the analyzer caches files by content, and each test must analyse afresh."""
    write_sample_project(root)
    body = "".join(f"def {root.name}_{n}(value):\n    total = value + {n}\n    return total * 2\n\n\n" for n in range(30))
    for n in range(files):
        path = root / "bulk" / f"module_{n:03}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f'"""Module {n}."""\n\n\n{body}')
    return root


@pytest.fixture(scope="module", params=["sqlite", "dynamodb"])
def pair(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalMesh, Path]]:
    """A mesh with two workflows instances on the SQLite store, or on DynamoDB Local (workflows only: the other
    services keep their SQLite stores)."""
    workspace = tmp_path_factory.mktemp("failover")
    # DynamoDB Local first: its fixture puts the AWS credentials and region in the environment the services get.
    endpoint = request.getfixturevalue("dynamodb_endpoint") if request.param == "dynamodb" else ""
    mesh = start_mesh(tmp_path_factory.mktemp("failover-mesh"), workspace, instances={"workflows": 2},
                      MCPMESH_WORKFLOW_LEASE=LEASE_SECONDS)
    try:
        if endpoint:
            url = f"dynamodb://failover?endpoint={endpoint}&region=us-east-1"
            for name in [n for n in mesh.processes if n.startswith("workflows")]:
                mesh.stop_service(name)
                command, env = mesh.commands[name]
                mesh.commands[name] = (command, {**env, "MCPMESH_STATE_URL": url})
                mesh.restart(name)
            mesh.wait_healthy(60)
        yield mesh, workspace
    finally:
        mesh.stop()


@pytest.fixture()
def client(pair: tuple[LocalMesh, Path]) -> Iterator[httpx.Client]:
    mesh, _ = pair
    headers = {"Authorization": f"Bearer {mesh.admin_key()}"}
    with httpx.Client(base_url=mesh.edge_url, headers=headers, timeout=30) as rest:
        yield rest


def get(rest: httpx.Client, path: str) -> dict[str, Any] | None:
    """GET that tolerates the moment the edge still routes to a killed instance (a retry follows)."""
    try:
        response = rest.get(path)
    except httpx.TransportError:
        return None
    return response.json() if response.status_code == 200 else None


def events_of(rest: httpx.Client, workflow_id: str) -> list[dict[str, Any]]:
    with rest.stream("GET", f"/v1/workflows/{workflow_id}:watch") as response:
        assert response.status_code == 200
        return [json.loads(line)["event"] for line in response.iter_lines() if line.strip()]


def owner_pid(rest: httpx.Client, workflow_id: str) -> int | None:
    """The process holding the run, from its `started` event ("workflow started by HOST:PID:...") once a step runs."""
    workflow = get(rest, f"/v1/workflows/{workflow_id}")
    if workflow is None:
        return None
    steps = {s["name"]: s.get("state") for s in workflow["workflow"]["steps"]}
    if steps["analyze_code"] != "WORKFLOW_STATE_RUNNING":
        return None
    with rest.stream("GET", f"/v1/workflows/{workflow_id}:watch") as response:
        for line in response.iter_lines():
            event = json.loads(line)["event"]
            if event["type"] == "WORKFLOW_EVENT_TYPE_STARTED":
                return int(event["message"].split(" by ")[1].split(":")[1])
    return None


def instance_named(mesh: LocalMesh, pid: int) -> str:
    return next(name for name, process in mesh.processes.items() if process.pid == pid)


def side_effects(mesh: LocalMesh, workflow_id: str) -> tuple[int, int]:
    """Agent runs and tool executions recorded under this workflow's idempotency keys (thread:checkpoint:task)."""
    with sqlite3.connect(mesh.data_dir / "agents.db") as agents, sqlite3.connect(mesh.data_dir / "tools.db") as tools:
        runs = agents.execute("SELECT COUNT(*) FROM agent_run_records WHERE idempotency_key LIKE ?", (f"{workflow_id}:%",))
        executions = tools.execute("SELECT COUNT(*) FROM tool_idempotency WHERE key LIKE ?", (f"{workflow_id}:%",))
        return runs.fetchone()[0], executions.fetchone()[0]


def assert_complete_log(events: list[dict[str, Any]]) -> None:
    assert [int(e["sequence"]) for e in events] == list(range(1, len(events) + 1))
    kinds = [e["type"].removeprefix("WORKFLOW_EVENT_TYPE_") for e in events]
    assert kinds[:2] == ["CREATED", "STARTED"]
    assert kinds[-1] == "SUCCEEDED"
    assert "RESUMED" in kinds
    for kind in ("STEP_STARTED", "STEP_SUCCEEDED"):
        assert sorted(e["step"] for e in events if e["type"].endswith(kind)) == STEPS, kind
    merge = kinds.index("STEP_STARTED", max(i for i, k in enumerate(kinds) if k == "STEP_SUCCEEDED" and events[i]["step"] != "merge"))
    assert events[merge]["step"] == "merge"


def run_and_kill(mesh: LocalMesh, rest: httpx.Client, project: Path) -> tuple[str, str]:
    created = rest.post("/v1/workflows", json={"type": "code_analysis", "parameters": {"path": str(project)}})
    assert created.status_code == 200, created.text
    workflow_id = created.json()["workflow"]["id"]
    pid = wait_until(lambda: owner_pid(rest, workflow_id), 60, "the analysis step to run")
    name = instance_named(mesh, pid)
    mesh.stop_service(name, signal.SIGKILL)
    return workflow_id, name


def wait_for_end(rest: httpx.Client, workflow_id: str) -> dict[str, Any]:
    def ended() -> dict[str, Any] | None:
        body = get(rest, f"/v1/workflows/{workflow_id}")
        return body["workflow"] if body and body["workflow"]["state"] in TERMINAL else None

    return wait_until(ended, 90, "the workflow to end", interval=0.5)


def check_result(final: dict[str, Any]) -> None:
    assert final["state"] == "WORKFLOW_STATE_SUCCEEDED", final.get("error")
    assert all(step["state"] == "WORKFLOW_STATE_SUCCEEDED" for step in final["steps"]), final["steps"]
    found = {(f["rule_id"], f["file"], f["line"]) for f in final["result"]["findings"]}
    assert ("B602", "app/main.py", 10) in found and ("B307", "app/main.py", 5) in found
    assert final["result"]["inventory"]["total_files"] == len(SAMPLE_FILES) + 300


def test_sigkill_of_the_running_instance_hands_the_run_to_the_other(pair: tuple[LocalMesh, Path], client: httpx.Client) -> None:
    mesh, workspace = pair
    project = write_large_project(workspace / "killed")
    workflow_id, killed = run_and_kill(mesh, client, project)
    final = wait_for_end(client, workflow_id)
    check_result(final)
    events = events_of(client, workflow_id)
    assert_complete_log(events)
    resumed = next(e for e in events if e["type"] == "WORKFLOW_EVENT_TYPE_RESUMED")
    survivor = next(name for name in mesh.processes if name.startswith("workflows"))
    assert f":{mesh.processes[survivor].pid}:" in resumed["message"]
    assert killed != survivor
    assert side_effects(mesh, workflow_id) == (1, 1)


def test_restart_of_the_only_instance_resumes_the_run(pair: tuple[LocalMesh, Path], client: httpx.Client) -> None:
    mesh, workspace = pair
    assert [n for n in mesh.processes if n.startswith("workflows")] != [], "the previous test left one instance"
    for extra in [n for n in mesh.processes if n.startswith("workflows")][1:]:
        mesh.stop_service(extra)
    project = write_large_project(workspace / "restarted")
    workflow_id, killed = run_and_kill(mesh, client, project)
    assert not [n for n in mesh.processes if n.startswith("workflows")]  # none left
    mesh.restart(killed)
    final = wait_for_end(client, workflow_id)
    check_result(final)
    assert_complete_log(events_of(client, workflow_id))
    assert side_effects(mesh, workflow_id) == (1, 1)
