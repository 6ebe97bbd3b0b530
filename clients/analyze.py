"""`mcpmesh analyze PATH`: a code_analysis workflow with live progress, a findings table, SARIF and a severity gate."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn
from rich.table import Table

from clients.resources import Json
from clients.rest import McpMeshClient
from clients.sarif import SEVERITY_RANK, location, rule_id, severity, to_sarif
from clients.session import EXIT_FAILED, Session, session, short

STEP_DONE = {"WORKFLOW_EVENT_TYPE_STEP_SUCCEEDED": "done", "WORKFLOW_EVENT_TYPE_STEP_FAILED": "failed"}
STEP_PROGRESS = "WORKFLOW_EVENT_TYPE_STEP_PROGRESS"


def findings_table(findings: list[dict[str, Any]], limit: int = 0) -> Table:
    ordered = sorted(findings, key=lambda f: (-SEVERITY_RANK.get(severity(f), 0), location(f)))
    shown = ordered[:limit] if limit else ordered
    title = f"{len(findings)} findings" + (f" (first {len(shown)})" if len(shown) < len(findings) else "")
    table = Table("severity", "rule", "location", "message", title=title)
    for finding in shown:
        file, line, _ = location(finding)
        table.add_row(severity(finding), rule_id(finding), f"{file}:{line}" if line else file, str(finding.get("message", "")))
    return table


def _follow(state: Session, client: McpMeshClient, workflow: dict[str, Any], show: bool) -> dict[str, Any]:
    """Live bars: the workflow's overall progress and one bar per step, driven by the event stream."""
    with Progress(
        TextColumn("{task.description:<24}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
        TextColumn("{task.fields[status]}"), console=state.err, disable=not show, transient=False,
    ) as progress:
        overall = progress.add_task("workflow", total=100, status="pending")
        steps: dict[str, TaskID] = {}
        for name in [s.get("name", "") for s in workflow.get("steps", [])]:
            steps[name] = progress.add_task(f"  {name}", total=1, status="waiting")
        items: dict[str, int] = {}  # step -> its item count, once a step_progress event gave one
        for event in client.watch_workflow(workflow["id"]):
            progress.update(overall, completed=event.get("progressPercent", 0), status=event.get("message", "")[:60])
            step = event.get("step", "")
            if step:
                task = steps.get(step) or steps.setdefault(step, progress.add_task(f"  {step}", total=1, status="waiting"))
                _step_bar(progress, task, event, items, step)
    return client.get_workflow(workflow["id"])


def _step_bar(progress: Progress, task: TaskID, event: dict[str, Any], items: dict[str, int], step: str) -> None:
    """A step's bar: items done of total while it reports them (files, tables), full when it succeeds; a failed
    step's bar stays where it stopped."""
    done = STEP_DONE.get(event.get("type", ""))
    total = int(event.get("itemsTotal") or 0)  # int64 fields are JSON strings
    if event.get("type") == STEP_PROGRESS and total > 0:
        items[step] = total
        finished = int(event.get("itemsDone") or 0)
        progress.update(task, total=total, completed=finished, status=f"{finished} of {total}")
        return
    if done == "failed":  # the bar stays where the step stopped
        progress.update(task, status=done)
        return
    whole = items.get(step, 1)
    progress.update(task, total=whole, completed=whole if done else 0, status=done or "running")


def analyze(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="folder to analyse (must be inside the mesh's workspace roots)")],
    fail_on: Annotated[str, typer.Option(help="exit 1 when a finding is at least this severe: critical, high, medium, low, info")] = "",
    sarif: Annotated[Path | None, typer.Option(help="write the findings to this file as SARIF 2.1.0")] = None,
    limit: Annotated[int, typer.Option(help="findings shown in the table (0 = all)")] = 20,
    progress: Annotated[bool, typer.Option(help="live progress bars on stderr")] = True,
    as_json: Json = False,
) -> None:
    """Analyses a folder (code_analysis workflow): live progress, a findings table; exits 1 on failure or --fail-on."""
    state = session(ctx, as_json)
    threshold = fail_on.lower()
    if threshold and threshold not in SEVERITY_RANK:
        state.fail(f"--fail-on {fail_on!r}: choose one of {', '.join(sorted(SEVERITY_RANK, key=SEVERITY_RANK.__getitem__, reverse=True))}")
    root = path.resolve()
    if not root.is_dir():
        state.fail(f"{path} is not a folder; pass the folder to analyse")
    with state.client() as client:
        workflow = client.create_workflow("code_analysis", {"path": str(root)})
        if not state.as_json:
            print(f"workflow {workflow['id']}: code_analysis of {root}", file=sys.stderr)
        final = _follow(state, client, workflow, progress and not state.as_json)
    outcome = short(final.get("state", ""), "WORKFLOW_STATE_")
    result = final.get("result") or {}
    findings: list[dict[str, Any]] = result.get("findings", [])
    if sarif is not None and outcome == "succeeded":
        sarif.write_text(json.dumps(to_sarif(findings, root), indent=2))
    # The workflow counts every finding; the list it returns may be cut short (a large tree), so gate on the counts.
    listed = Counter(severity(f) for f in findings)
    reported = result.get("finding_counts") or result.get("findingCounts") or {}
    counts = Counter({name: int(n) for name, n in reported.items() if name in SEVERITY_RANK and int(n)}) or listed
    report = {"workflow": final.get("id"), "state": outcome, "summary": result.get("summary", ""),
              "findingCounts": dict(counts), "findings": findings}

    def render(out: Console) -> None:
        if outcome != "succeeded":
            return
        out.print(result.get("summary", ""), highlight=False)
        if findings:
            out.print(findings_table(findings, limit))
        ranked = sorted(counts, key=lambda s: -SEVERITY_RANK[s])
        out.print("findings: " + (", ".join(f"{counts[s]} {s}" for s in ranked) or "none"), highlight=False)
        if sum(counts.values()) > len(findings):
            out.print(f"(the workflow returned {len(findings)} of {sum(counts.values())} findings)", highlight=False)

    state.emit(report, render)
    if sarif is not None and outcome == "succeeded":
        print(f"SARIF written to {sarif}", file=sys.stderr)
    if outcome != "succeeded":
        state.fail(f"workflow {final.get('id')} {outcome}: {(final.get('error') or {}).get('message', 'no reason given')}", EXIT_FAILED)
    if threshold:
        over = sum(n for name, n in counts.items() if SEVERITY_RANK[name] >= SEVERITY_RANK[threshold])
        if over:
            state.fail(f"{over} findings at or above {threshold} (--fail-on {threshold})", EXIT_FAILED)
