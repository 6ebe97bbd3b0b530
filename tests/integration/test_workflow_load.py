"""Fifty workflows of mixed types at once through the edge: all finish, each with a complete event log."""

from __future__ import annotations

import json
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from services.launcher.processes import LocalMesh
from tests.integration.test_workflow_types_e2e import FIXTURES

TYPES = ["code_analysis", "database_analysis", "knowledge_build", "documentation", "repository_review"]
COUNT = 50
DEADLINE = 240.0  # seconds for all fifty, on two shared cores


def test_fifty_concurrent_workflows_of_mixed_types_finish_with_complete_logs(
    mesh: LocalMesh, admin_key: str, sample_project: Path
) -> None:
    folders = []
    for n in range(COUNT // len(TYPES)):  # a folder per round, so each graph and docs site has its own writers
        folder = sample_project.parent / f"load-{n}"
        if not folder.exists():
            shutil.copytree(FIXTURES / "knowledge" / "shop", folder)
            shutil.copy(FIXTURES / "database" / "shop_queries.sql", folder / "queries.sql")
        folders.append(folder)
    plan = [(TYPES[i % len(TYPES)], folders[i // len(TYPES)]) for i in range(COUNT)]
    started = time.monotonic()

    def one(item: tuple[str, Path]) -> tuple[str, dict[str, Any], list[dict[str, Any]]]:
        type_name, folder = item
        headers = {"Authorization": f"Bearer {admin_key}"}
        with httpx.Client(base_url=mesh.edge_url, headers=headers, timeout=DEADLINE) as rest:
            created = rest.post("/v1/workflows", json={"type": type_name, "parameters": {"path": str(folder)}})
            assert created.status_code == 200, created.text
            workflow_id = created.json()["workflow"]["id"]
            with rest.stream("GET", f"/v1/workflows/{workflow_id}:watch") as response:
                events = [json.loads(line)["event"] for line in response.iter_lines() if line.strip()]
            return type_name, rest.get(f"/v1/workflows/{workflow_id}").json()["workflow"], events

    with ThreadPoolExecutor(max_workers=COUNT) as pool:
        outcomes = list(pool.map(one, plan))
    elapsed = time.monotonic() - started
    assert elapsed < DEADLINE

    steps_of = {w["type"]: [s["name"] for s in w["steps"]] for _, w, _ in outcomes}
    for type_name, workflow, events in outcomes:
        assert workflow["state"] == "WORKFLOW_STATE_SUCCEEDED", (type_name, workflow.get("error"))
        assert [int(e["sequence"]) for e in events] == list(range(1, len(events) + 1))
        assert int(workflow["lastSequence"]) == len(events)
        kinds = [e["type"].removeprefix("WORKFLOW_EVENT_TYPE_") for e in events]
        assert kinds[:2] == ["CREATED", "STARTED"] and kinds[-1] == "SUCCEEDED"
        for kind in ("STEP_STARTED", "STEP_SUCCEEDED"):
            assert sorted(e["step"] for e in events if e["type"].endswith(kind)) == sorted(steps_of[type_name])
        assert events[-1]["progressPercent"] == 100
    assert sorted({t for t, _, _ in outcomes}) == sorted(TYPES)
    print(f"{COUNT} workflows of {len(TYPES)} types in {elapsed:.1f} s")
