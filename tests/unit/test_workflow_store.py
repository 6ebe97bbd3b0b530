"""Tests for the SQLite workflow store and its per-workflow event log."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from services.runtime.errors import NotFound
from services.runtime.sqlite import open_database
from services.workflows.store import SCHEMA, WorkflowStore

STEPS = ["analyze_code", "inventory_files", "merge"]


@pytest.fixture()
def database(tmp_path: Path):
    connection = open_database(tmp_path / "w.db", SCHEMA)
    yield connection
    connection.close()


@pytest.fixture()
def store(database: sqlite3.Connection) -> WorkflowStore:
    return WorkflowStore(database)


def test_create_records_created_event_with_sequence_one(store: WorkflowStore) -> None:
    workflow, created = store.create("code_analysis", {"path": "/x"}, STEPS, "")
    assert created
    assert workflow.state == "pending" and workflow.last_sequence == 1
    [event] = store.events_after(workflow.id, 0)
    assert (event.workflow_id, event.sequence, event.type, event.state, event.step) == (
        workflow.id, 1, "created", "pending", "",
    )
    assert "code_analysis" in event.message
    stored = store.get(workflow.id)
    assert stored.parameters == {"path": "/x"}
    assert [s.name for s in stored.steps] == STEPS
    assert all(s.state == "pending" for s in stored.steps)
    assert stored.last_sequence == 1


def test_record_increments_sequence_without_gaps(store: WorkflowStore) -> None:
    workflow, _ = store.create("code_analysis", {"path": "/x"}, STEPS, "")
    workflow.state = "running"
    sequences = [store.record(workflow, "started", "", "go").sequence]
    workflow.steps[0].state = "running"
    sequences.append(store.record(workflow, "step_started", "analyze_code", "a").sequence)
    workflow.steps[0].state, workflow.progress = "succeeded", 33
    sequences.append(store.record(workflow, "step_succeeded", "analyze_code", "a").sequence)
    workflow.state, workflow.result = "succeeded", {"ok": True}
    sequences.append(store.record(workflow, "succeeded", "", "done").sequence)
    assert sequences == [2, 3, 4, 5]
    events = store.events_after(workflow.id, 0)
    assert [e.sequence for e in events] == [1, 2, 3, 4, 5]
    assert [e.type for e in events] == ["created", "started", "step_started", "step_succeeded", "succeeded"]
    assert events[3].progress == 33
    stored = store.get(workflow.id)
    assert stored.state == "succeeded" and stored.done
    assert stored.result == {"ok": True}
    assert stored.steps[0].state == "succeeded"
    assert stored.last_sequence == 5


def test_sequences_are_per_workflow(store: WorkflowStore) -> None:
    first, _ = store.create("code_analysis", {"path": "/a"}, STEPS, "")
    second, _ = store.create("code_analysis", {"path": "/b"}, STEPS, "")
    assert store.record(first, "started", "", "").sequence == 2
    assert store.record(second, "started", "", "").sequence == 2
    assert store.record(first, "started", "", "").sequence == 3


def test_reused_request_id_returns_the_same_workflow(store: WorkflowStore) -> None:
    first, created = store.create("code_analysis", {"path": "/x"}, STEPS, "req-1")
    again, created_again = store.create("code_analysis", {"path": "/other"}, STEPS, "req-1")
    assert created and not created_again
    assert again.id == first.id
    assert again.parameters == {"path": "/x"}
    assert len(store.events_after(first.id, 0)) == 1
    other, created_other = store.create("code_analysis", {"path": "/x"}, STEPS, "req-2")
    assert created_other and other.id != first.id


def test_empty_request_ids_never_collide(store: WorkflowStore) -> None:
    a, _ = store.create("code_analysis", {"path": "/x"}, STEPS, "")
    b, created = store.create("code_analysis", {"path": "/x"}, STEPS, "")
    assert created and a.id != b.id


def test_list_filters_by_state_and_paginates(store: WorkflowStore) -> None:
    ids = []
    for n in range(5):
        workflow, _ = store.create("code_analysis", {"path": f"/{n}"}, STEPS, "")
        ids.append(workflow.id)
        if n % 2 == 0:
            workflow.state = "succeeded"
            store.record(workflow, "succeeded", "", "")
    everything, more = store.list("", 0, 10)
    assert len(everything) == 5 and not more
    # Newest first.
    assert [w.id for w in everything] == list(reversed(ids))

    succeeded, more = store.list("succeeded", 0, 10)
    assert {w.id for w in succeeded} == {ids[0], ids[2], ids[4]} and not more
    pending, _ = store.list("pending", 0, 10)
    assert {w.id for w in pending} == {ids[1], ids[3]}
    assert store.list("failed", 0, 10) == ([], False)

    page1, more1 = store.list("", 0, 2)
    page2, more2 = store.list("", 2, 2)
    page3, more3 = store.list("", 4, 2)
    assert (len(page1), more1, len(page2), more2, len(page3), more3) == (2, True, 2, True, 1, False)
    assert [w.id for w in page1 + page2 + page3] == [w.id for w in everything]
    exact, more_exact = store.list("succeeded", 0, 3)
    assert len(exact) == 3 and not more_exact


def test_unfinished_lists_pending_and_running_only(store: WorkflowStore) -> None:
    pending, _ = store.create("code_analysis", {"path": "/a"}, STEPS, "")
    running, _ = store.create("code_analysis", {"path": "/b"}, STEPS, "")
    ended, _ = store.create("code_analysis", {"path": "/c"}, STEPS, "")
    running.state = "running"
    store.record(running, "started", "", "")
    ended.state = "failed"
    ended.error = {"code": "INTERNAL", "reason": "INTERNAL", "message": "x"}
    store.record(ended, "failed", "", "")
    assert [w.id for w in store.unfinished()] == [pending.id, running.id]
    assert store.get(ended.id).error == {"code": "INTERNAL", "reason": "INTERNAL", "message": "x"}


def test_events_after_sequence(store: WorkflowStore) -> None:
    workflow, _ = store.create("code_analysis", {"path": "/x"}, STEPS, "")
    for _ in range(3):
        store.record(workflow, "started", "", "")
    assert [e.sequence for e in store.events_after(workflow.id, 2)] == [3, 4]
    assert store.events_after(workflow.id, 4) == []
    assert store.events_after("nope", 0) == []


def test_events_after_position_spans_workflows(store: WorkflowStore) -> None:
    assert store.last_position() == 0
    a, _ = store.create("code_analysis", {"path": "/a"}, STEPS, "")
    mark = store.last_position()
    b, _ = store.create("code_analysis", {"path": "/b"}, STEPS, "")
    event = store.record(a, "started", "", "")
    later = store.events_after_position(mark)
    assert [(e.workflow_id, e.sequence) for e in later] == [(b.id, 1), (a.id, 2)]
    assert later[-1].position == event.position == store.last_position()
    assert [e.position for e in later] == sorted(e.position for e in later)
    assert store.events_after_position(store.last_position()) == []


def test_get_unknown_raises_not_found(store: WorkflowStore) -> None:
    with pytest.raises(NotFound) as error:
        store.get("missing")
    assert error.value.reason == "WORKFLOW_NOT_FOUND"
    assert error.value.metadata == {"workflow": "missing"}


def test_two_stores_on_one_file_see_each_others_writes(tmp_path: Path) -> None:
    first_db = open_database(tmp_path / "w.db", SCHEMA)
    second_db = open_database(tmp_path / "w.db", SCHEMA)
    try:
        first, second = WorkflowStore(first_db), WorkflowStore(second_db)
        workflow, _ = first.create("code_analysis", {"path": "/x"}, STEPS, "req")
        seen = second.get(workflow.id)
        assert seen.parameters == {"path": "/x"}
        assert second.create("code_analysis", {"path": "/x"}, STEPS, "req")[0].id == workflow.id
        # The second store advances the shared sequence; the first sees the event and the state.
        seen.state = "running"
        assert second.record(seen, "started", "", "").sequence == 2
        assert [e.sequence for e in first.events_after(workflow.id, 0)] == [1, 2]
        assert first.get(workflow.id).state == "running"
        stale = first.get(workflow.id)
        assert first.record(stale, "step_started", "merge", "").sequence == 3
    finally:
        first_db.close()
        second_db.close()
