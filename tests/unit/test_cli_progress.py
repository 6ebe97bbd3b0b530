"""`mcpmesh analyze`'s step bars follow the step's own item counts (files done of total), then its end."""

from __future__ import annotations

from typing import Any

from rich.progress import Progress

from clients.analyze import _step_bar


def _event(kind: str, **fields: Any) -> dict[str, Any]:
    return {"type": f"WORKFLOW_EVENT_TYPE_{kind}", "step": "analyze_code", **fields}


def test_a_step_bar_counts_items_then_fills_at_the_end() -> None:
    progress = Progress(disable=True)
    task = progress.add_task("analyze_code", total=1, status="waiting")
    items: dict[str, int] = {}
    seen = []
    for event in (
        _event("STEP_STARTED"),
        _event("STEP_PROGRESS", itemsDone="137", itemsTotal="409"),
        _event("STEP_PROGRESS", itemsDone="409", itemsTotal="409"),
        _event("STEP_SUCCEEDED"),
    ):
        _step_bar(progress, task, event, items, "analyze_code")
        bar = progress.tasks[0]
        seen.append((bar.completed, bar.total, bar.fields["status"]))
    assert seen == [(0, 1, "running"), (137, 409, "137 of 409"), (409, 409, "409 of 409"), (409, 409, "done")]


def test_a_step_without_item_counts_is_empty_until_it_ends() -> None:
    progress = Progress(disable=True)
    task = progress.add_task("merge", total=1, status="waiting")
    items: dict[str, int] = {}
    _step_bar(progress, task, _event("STEP_STARTED", step="merge"), items, "merge")
    assert (progress.tasks[0].completed, progress.tasks[0].fields["status"]) == (0, "running")
    _step_bar(progress, task, _event("STEP_FAILED", step="merge"), items, "merge")
    assert (progress.tasks[0].completed, progress.tasks[0].fields["status"]) == (0, "failed")
