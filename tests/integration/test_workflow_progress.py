"""Progress inside a long step: the Code Analyzer's files done of total reach a watcher as step-progress events,
through the edge, the workflows service and the agents service's StreamAgentRun over the mesh; the run's report
is kept in the artifact store and served by the name the result gives."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from pathlib import Path

import httpx

FILES = 200


def _project(folder: Path) -> Path:
    folder.mkdir()
    token = secrets.token_hex(4)  # fresh content: nothing comes from the analyser's cache
    for n in range(FILES):
        (folder / f"module_{n:03d}.py").write_text(
            f'"""Module {n} ({token})."""\n\n\ndef value_{n}(x: int) -> int:\n    if x > {n}:\n        return x - {n}\n'
            f"    return x + {n}\n"
        )
    return folder


def test_a_code_analysis_reports_files_done_of_total_while_its_step_runs(rest: httpx.Client, sample_project: Path) -> None:
    project = _project(sample_project.parent / "many-files")
    created = rest.post("/v1/workflows", json={"type": "code_analysis", "parameters": {"path": str(project)}})
    assert created.status_code == 200, created.text
    workflow_id = created.json()["workflow"]["id"]
    with rest.stream("GET", f"/v1/workflows/{workflow_id}:watch") as response:
        assert response.status_code == 200
        events = [json.loads(line)["event"] for line in response.iter_lines() if line.strip()]
    assert [int(e["sequence"]) for e in events] == list(range(1, len(events) + 1))
    assert events[-1]["type"] == "WORKFLOW_EVENT_TYPE_SUCCEEDED", events[-1]
    kinds = [e["type"] for e in events]
    progress = [e for e in events if e["type"] == "WORKFLOW_EVENT_TYPE_STEP_PROGRESS"]
    assert progress, kinds
    assert {e["step"] for e in progress} == {"analyze_code"}
    # The stage's first report may come before the files are counted (the folder is still being walked).
    files = [(int(e.get("itemsDone", 0)), int(e["itemsTotal"])) for e in progress if int(e.get("itemsTotal", 0))]
    assert files[-1] == (FILES, FILES)  # the last report of the stage always comes
    assert all(total == FILES for _, total in files) and [d for d, _ in files] == sorted(d for d, _ in files)
    assert all(e["stepsTotal"] == 3 for e in progress)
    # Between the step's start and its end, and the workflow's percent never goes back.
    started = next(i for i, e in enumerate(events) if e["type"] == "WORKFLOW_EVENT_TYPE_STEP_STARTED" and e["step"] == "analyze_code")
    ended = next(i for i, e in enumerate(events) if e["type"] == "WORKFLOW_EVENT_TYPE_STEP_SUCCEEDED" and e["step"] == "analyze_code")
    assert all(started < events.index(e) < ended for e in progress)
    percents = [e.get("progressPercent", 0) for e in events]
    assert percents == sorted(percents) and percents[-1] == 100
    result = rest.get(f"/v1/workflows/{workflow_id}").json()["workflow"]["result"]
    assert result["code_stats"]["files_analyzed"] in (FILES, str(FILES))
    # The agent's report is kept in the artifact store and referenced; the edge serves it by that name.
    [report] = [a for a in result["artifacts"] if a["name"] == "report.md"]
    downloaded = rest.get(f"/v1/artifacts/{report['artifact']}")
    assert downloaded.status_code == 200, downloaded.text
    content = base64.b64decode(downloaded.json()["content"])
    assert hashlib.sha256(content).hexdigest() == report["sha256"] and len(content) == int(report["bytes"])
    assert content.startswith(b"# Code analysis")
