"""Conformance suite of the WorkflowStore port: every adapter must pass it unchanged."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from services.runtime.clock import utcnow
from services.runtime.errors import NotFound
from services.runtime.identity import ANONYMOUS, Identity
from services.runtime.state import SqliteDatabase
from services.workflows.store import Draft, RunStart, WorkflowStore, opening_events
from services.workflows.store_dynamodb import DynamoDBWorkflowStore, create_tables
from services.workflows.store_sqlite import SCHEMA, SqliteWorkflowStore
from tests.dynamodb import tables_for

STEPS = ["analyze_code", "inventory_files", "merge"]

# Each adapter: a factory that opens a store over shared state named by `where`, and closes what it opened.
Opener = Callable[[Path], tuple[WorkflowStore, Callable[[], None]]]


def _sqlite(where: Path) -> tuple[WorkflowStore, Callable[[], None]]:
    database = SqliteDatabase(where / "workflows.db", SCHEMA)
    return SqliteWorkflowStore(database), database.close


def _dynamodb(where: Path) -> tuple[WorkflowStore, Callable[[], None]]:
    client, prefix = tables_for(where, create_tables)  # one set of tables per test
    store = DynamoDBWorkflowStore(client, prefix)
    return store, store.close


ADAPTERS: dict[str, Opener] = {"sqlite": _sqlite, "dynamodb": _dynamodb}


@pytest.fixture(params=sorted(ADAPTERS))
def opener(request: pytest.FixtureRequest) -> Opener:
    if request.param == "dynamodb":
        request.getfixturevalue("dynamodb_endpoint")  # DynamoDB Local, started once per session
    return ADAPTERS[request.param]


@pytest.fixture()
async def store(opener: Opener, tmp_path: Path) -> AsyncIterator[WorkflowStore]:
    opened, close = opener(tmp_path)
    yield opened
    close()


async def test_create_records_created_event_with_sequence_one(store: WorkflowStore) -> None:
    workflow, created = await store.create("code_analysis", {"path": "/x"}, STEPS, "")
    assert created
    assert workflow.state == "pending" and workflow.last_sequence == 1
    [event] = await store.events_after(workflow.id, 0)
    assert (event.workflow_id, event.sequence, event.type, event.state, event.step) == (workflow.id, 1, "created", "pending", "")
    assert "code_analysis" in event.message
    stored = await store.get(workflow.id)
    assert stored.parameters == {"path": "/x"}
    assert [s.name for s in stored.steps] == STEPS
    assert all(s.state == "pending" for s in stored.steps)
    assert stored.last_sequence == 1


async def test_create_keeps_the_creating_trace(store: WorkflowStore) -> None:
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    traced, _ = await store.create("code_analysis", {"path": "/x"}, STEPS, "", traceparent)
    untraced, _ = await store.create("code_analysis", {"path": "/x"}, STEPS, "")
    stored = await store.get(traced.id)
    assert stored.traceparent == traceparent and stored.trace_id == "0af7651916cd43dd8448eb211c80319c"
    stored.state = "running"
    await store.record(stored, "started", "", "started")  # a state change keeps it
    assert (await store.get(traced.id)).traceparent == traceparent
    assert (await store.get(untraced.id)).traceparent == "" and untraced.trace_id == ""


async def test_create_keeps_the_creator(store: WorkflowStore) -> None:
    creator = Identity("key:k1", "operator", ("file_*", "time.*"))
    made, _ = await store.create("code_analysis", {"path": "/x"}, STEPS, "", "", None, creator)
    nobody, _ = await store.create("code_analysis", {"path": "/x"}, STEPS, "")
    stored = await store.get(made.id)
    assert stored.creator == creator
    stored.state = "running"
    await store.record(stored, "started", "", "started")  # a state change keeps it
    assert (await store.get(made.id)).creator == creator
    assert [w.creator for w in await store.claimable(utcnow()) if w.id == made.id] == [creator]  # what a sweep sees
    assert (await store.get(nobody.id)).creator == ANONYMOUS


async def test_create_writes_exactly_the_opening_events(store: WorkflowStore) -> None:
    workflow, _ = await store.create("code_analysis", {"path": "/x"}, STEPS, "")
    assert await store.events_after(workflow.id, 0) == opening_events(workflow, None)


async def test_create_with_a_start_claims_and_starts_the_run_in_one_write(store: WorkflowStore) -> None:
    now = utcnow()
    start = RunStart("owner-a", now + dt.timedelta(seconds=30))
    workflow, created = await store.create("code_analysis", {"path": "/x"}, STEPS, "", "", start)
    assert created and workflow.state == "running" and workflow.last_sequence == 2
    events = await store.events_after(workflow.id, 0)
    assert events == opening_events(workflow, start)
    assert [(e.sequence, e.type, e.state) for e in events] == [(1, "created", "pending"), (2, "started", "running")]
    assert "owner-a" in events[1].message
    stored = await store.get(workflow.id)
    assert (stored.state, stored.last_sequence) == ("running", 2)
    assert not await store.claim(workflow.id, "owner-b", now, now + dt.timedelta(seconds=30))  # the lease is held
    assert await store.renew(workflow.id, "owner-a", now + dt.timedelta(seconds=60)) == "held"
    assert workflow.id not in [w.id for w in await store.claimable(now)]
    stored.state = "succeeded"
    event = await store.record(stored, "succeeded", "", "done")
    assert event.sequence == 3


async def test_record_increments_sequence_without_gaps(store: WorkflowStore) -> None:
    workflow, _ = await store.create("code_analysis", {"path": "/x"}, STEPS, "")
    workflow.state = "running"
    sequences = [(await store.record(workflow, "started", "", "go")).sequence]
    workflow.steps[0].state = "running"
    sequences.append((await store.record(workflow, "step_started", "analyze_code", "a")).sequence)
    workflow.steps[0].state, workflow.progress = "succeeded", 33
    sequences.append((await store.record(workflow, "step_succeeded", "analyze_code", "a")).sequence)
    workflow.state, workflow.result = "succeeded", {"ok": True}
    sequences.append((await store.record(workflow, "succeeded", "", "done")).sequence)
    assert sequences == [2, 3, 4, 5]
    events = await store.events_after(workflow.id, 0)
    assert [e.sequence for e in events] == [1, 2, 3, 4, 5]
    assert [e.type for e in events] == ["created", "started", "step_started", "step_succeeded", "succeeded"]
    assert events[3].progress == 33
    stored = await store.get(workflow.id)
    assert stored.state == "succeeded" and stored.done
    assert stored.result == {"ok": True}
    assert stored.steps[0].state == "succeeded"
    assert stored.last_sequence == 5


async def test_record_all_writes_changes_in_order_with_their_own_states(store: WorkflowStore) -> None:
    workflow, _ = await store.create("code_analysis", {"path": "/x"}, STEPS, "")
    workflow.state = "running"
    started = Draft.of(workflow, "started", "", "started")
    workflow.steps[0].state, workflow.progress = "succeeded", 33
    step_done = Draft.of(workflow, "step_succeeded", STEPS[0], "first step done")
    progress = Draft.of(workflow, "step_progress", STEPS[1], "files", 5, 9)
    events = await store.record_all(workflow, [started, step_done, progress])
    assert [(e.sequence, e.type, e.state, e.progress, e.steps_done) for e in events] == [
        (2, "started", "running", 0, 0), (3, "step_succeeded", "running", 33, 1), (4, "step_progress", "running", 33, 1)]
    assert (events[2].items_done, events[2].items_total, events[2].steps_total) == (5, 9, 3)
    assert await store.events_after(workflow.id, 1) == events
    stored = await store.get(workflow.id)
    assert (stored.last_sequence, stored.progress, stored.steps[0].state) == (4, 33, "succeeded")
    assert (await store.record(stored, "succeeded", "", "done")).sequence == 5


async def test_sequences_are_per_workflow(store: WorkflowStore) -> None:
    first, _ = await store.create("code_analysis", {"path": "/a"}, STEPS, "")
    second, _ = await store.create("code_analysis", {"path": "/b"}, STEPS, "")
    assert (await store.record(first, "started", "", "")).sequence == 2
    assert (await store.record(second, "started", "", "")).sequence == 2
    assert (await store.record(first, "started", "", "")).sequence == 3


async def test_reused_request_id_returns_the_same_workflow(store: WorkflowStore) -> None:
    first, created = await store.create("code_analysis", {"path": "/x"}, STEPS, "req-1")
    again, created_again = await store.create("code_analysis", {"path": "/other"}, STEPS, "req-1")
    assert created and not created_again
    assert again.id == first.id
    assert again.parameters == {"path": "/x"}
    assert len(await store.events_after(first.id, 0)) == 1
    other, created_other = await store.create("code_analysis", {"path": "/x"}, STEPS, "req-2")
    assert created_other and other.id != first.id


async def test_request_id_raced_by_many_callers_makes_one_workflow(store: WorkflowStore) -> None:
    results = await asyncio.gather(*(store.create("code_analysis", {"path": "/x"}, STEPS, "race") for _ in range(8)))
    assert len({w.id for w, _ in results}) == 1
    assert sum(created for _, created in results) == 1


async def test_empty_request_ids_never_collide(store: WorkflowStore) -> None:
    a, _ = await store.create("code_analysis", {"path": "/x"}, STEPS, "")
    b, created = await store.create("code_analysis", {"path": "/x"}, STEPS, "")
    assert created and a.id != b.id


async def test_list_filters_by_state_and_paginates(store: WorkflowStore) -> None:
    ids = []
    for n in range(5):
        workflow, _ = await store.create("code_analysis", {"path": f"/{n}"}, STEPS, "")
        ids.append(workflow.id)
        if n % 2 == 0:
            workflow.state = "succeeded"
            await store.record(workflow, "succeeded", "", "")
    everything, more = await store.list("", 0, 10)
    assert len(everything) == 5 and not more
    assert [w.id for w in everything] == list(reversed(ids))  # newest first

    succeeded, more = await store.list("succeeded", 0, 10)
    assert {w.id for w in succeeded} == {ids[0], ids[2], ids[4]} and not more
    pending, _ = await store.list("pending", 0, 10)
    assert {w.id for w in pending} == {ids[1], ids[3]}
    assert await store.list("failed", 0, 10) == ([], False)

    page1, more1 = await store.list("", 0, 2)
    page2, more2 = await store.list("", 2, 2)
    page3, more3 = await store.list("", 4, 2)
    assert (len(page1), more1, len(page2), more2, len(page3), more3) == (2, True, 2, True, 1, False)
    assert [w.id for w in page1 + page2 + page3] == [w.id for w in everything]
    exact, more_exact = await store.list("succeeded", 0, 3)
    assert len(exact) == 3 and not more_exact


async def test_unfinished_lists_pending_and_running_only(store: WorkflowStore) -> None:
    pending, _ = await store.create("code_analysis", {"path": "/a"}, STEPS, "")
    running, _ = await store.create("code_analysis", {"path": "/b"}, STEPS, "")
    ended, _ = await store.create("code_analysis", {"path": "/c"}, STEPS, "")
    running.state = "running"
    await store.record(running, "started", "", "")
    ended.state = "failed"
    ended.error = {"code": "INTERNAL", "reason": "INTERNAL", "message": "x"}
    await store.record(ended, "failed", "", "")
    assert [w.id for w in await store.unfinished()] == [pending.id, running.id]
    assert (await store.get(ended.id)).error == {"code": "INTERNAL", "reason": "INTERNAL", "message": "x"}


async def test_events_after_sequence(store: WorkflowStore) -> None:
    workflow, _ = await store.create("code_analysis", {"path": "/x"}, STEPS, "")
    for _ in range(3):
        await store.record(workflow, "started", "", "")
    assert [e.sequence for e in await store.events_after(workflow.id, 2)] == [3, 4]
    assert await store.events_after(workflow.id, 4) == []
    assert await store.events_after("nope", 0) == []


async def test_changed_since_names_workflows_with_their_last_sequence(store: WorkflowStore) -> None:
    before = utcnow() - dt.timedelta(seconds=1)
    a, _ = await store.create("code_analysis", {"path": "/a"}, STEPS, "")
    b, _ = await store.create("code_analysis", {"path": "/b"}, STEPS, "")
    await store.record(a, "started", "", "")
    changed = dict(await store.changed_since(before))
    assert changed == {a.id: 2, b.id: 1}
    assert await store.changed_since(utcnow() + dt.timedelta(seconds=5)) == []


async def test_get_unknown_raises_not_found(store: WorkflowStore) -> None:
    with pytest.raises(NotFound) as error:
        await store.get("missing")
    assert error.value.reason == "WORKFLOW_NOT_FOUND"
    assert error.value.metadata == {"workflow": "missing"}


async def test_record_of_unknown_workflow_writes_nothing(store: WorkflowStore) -> None:
    workflow, _ = await store.create("code_analysis", {"path": "/x"}, STEPS, "")
    workflow.id = "missing"
    with pytest.raises(NotFound):
        await store.record(workflow, "started", "", "")
    assert await store.events_after("missing", 0) == []


async def test_ping_answers(store: WorkflowStore) -> None:
    await store.ping()


async def test_two_stores_on_shared_state_see_each_others_writes(opener: Opener, tmp_path: Path) -> None:
    first, close_first = opener(tmp_path)
    second, close_second = opener(tmp_path)
    try:
        workflow, _ = await first.create("code_analysis", {"path": "/x"}, STEPS, "req")
        seen = await second.get(workflow.id)
        assert seen.parameters == {"path": "/x"}
        assert (await second.create("code_analysis", {"path": "/x"}, STEPS, "req"))[0].id == workflow.id
        # The second store advances the shared sequence; the first sees the event and the state.
        seen.state = "running"
        assert (await second.record(seen, "started", "", "")).sequence == 2
        assert [e.sequence for e in await first.events_after(workflow.id, 0)] == [1, 2]
        assert (await first.get(workflow.id)).state == "running"
        stale = await first.get(workflow.id)
        assert (await first.record(stale, "step_started", "merge", "")).sequence == 3
    finally:
        close_first()
        close_second()


def _at(seconds: float) -> dt.datetime:
    return utcnow() + dt.timedelta(seconds=seconds)


async def test_claim_is_exclusive_until_the_lease_expires(store: WorkflowStore) -> None:
    workflow, _ = await store.create("code_analysis", {"path": "/x"}, STEPS, "")
    now = utcnow()
    assert [w.id for w in await store.claimable(now)] == [workflow.id]
    assert await store.claim(workflow.id, "a", now, now + dt.timedelta(seconds=10))
    assert not await store.claim(workflow.id, "b", now, now + dt.timedelta(seconds=10))
    assert await store.claim(workflow.id, "a", now, now + dt.timedelta(seconds=10))  # its own lease again
    assert await store.claimable(now) == []
    later = now + dt.timedelta(seconds=11)
    assert [w.id for w in await store.claimable(later)] == [workflow.id]
    assert await store.claim(workflow.id, "b", later, later + dt.timedelta(seconds=10))
    assert await store.renew(workflow.id, "a", _at(20)) == "lost"
    assert await store.renew(workflow.id, "b", _at(20)) == "held"


async def test_claim_raced_by_many_owners_has_one_winner(opener: Opener, tmp_path: Path) -> None:
    stores = [opener(tmp_path) for _ in range(4)]
    try:
        workflow, _ = await stores[0][0].create("code_analysis", {"path": "/x"}, STEPS, "")
        now = utcnow()
        wins = await asyncio.gather(
            *(s.claim(workflow.id, f"owner-{i}", now, now + dt.timedelta(seconds=10)) for i, (s, _) in enumerate(stores * 2))
        )
        assert sum(wins) == 1
    finally:
        for _, close in stores:
            close()


async def test_release_frees_the_lease_and_ended_workflows_cannot_be_claimed(store: WorkflowStore) -> None:
    workflow, _ = await store.create("code_analysis", {"path": "/x"}, STEPS, "")
    assert await store.claim(workflow.id, "a", utcnow(), _at(10))
    await store.release(workflow.id, "b")  # not b's: nothing changes
    assert await store.claimable(utcnow()) == []
    await store.release(workflow.id, "a")
    assert [w.id for w in await store.claimable(utcnow())] == [workflow.id]
    workflow.state = "succeeded"
    await store.record(workflow, "succeeded", "", "")
    assert await store.claimable(utcnow()) == []
    assert not await store.claim(workflow.id, "a", utcnow(), _at(10))
    assert not await store.claim("missing", "a", utcnow(), _at(10))


async def test_renew_reports_a_requested_cancel_and_an_ended_run(store: WorkflowStore) -> None:
    workflow, _ = await store.create("code_analysis", {"path": "/x"}, STEPS, "")
    assert await store.renew(workflow.id, "a", _at(10)) == "lost"  # never claimed
    assert await store.claim(workflow.id, "a", utcnow(), _at(10))
    await store.request_cancel(workflow.id)
    assert await store.renew(workflow.id, "a", _at(10)) == "cancel_requested"
    workflow.state = "cancelled"
    await store.record(workflow, "cancelled", "", "")
    assert await store.renew(workflow.id, "a", _at(10)) == "lost"
    with pytest.raises(NotFound):
        await store.request_cancel("missing")


async def test_cancel_requested_before_any_claim_is_kept(store: WorkflowStore) -> None:
    workflow, _ = await store.create("code_analysis", {"path": "/x"}, STEPS, "")
    await store.request_cancel(workflow.id)
    assert [w.id for w in await store.claimable(utcnow())] == [workflow.id]
    assert await store.claim(workflow.id, "a", utcnow(), _at(10))
    assert await store.renew(workflow.id, "a", _at(10)) == "cancel_requested"


async def test_prunable_lists_ended_workflows_once(store: WorkflowStore) -> None:
    ended, _ = await store.create("code_analysis", {"path": "/x"}, STEPS, "")
    running, _ = await store.create("code_analysis", {"path": "/y"}, STEPS, "")
    ended.state = "failed"
    await store.record(ended, "failed", "", "")
    running.state = "running"
    await store.record(running, "started", "", "")
    assert await store.prunable(utcnow() - dt.timedelta(seconds=60)) == []
    assert await store.prunable(_at(1)) == [ended.id]
    await store.mark_pruned(ended.id)
    assert await store.prunable(_at(1)) == []
    assert (await store.get(ended.id)).state == "failed"
    assert len(await store.events_after(ended.id, 0)) == 2
