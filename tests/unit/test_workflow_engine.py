"""Tests for the workflow engine: a real LangGraph run with a SQLite checkpointer and fake agent/tool calls."""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest

from services.runtime.errors import FailedPrecondition, InvalidArgument
from services.runtime.identity import ANONYMOUS, Identity
from services.runtime.state import SqliteDatabase
from services.workflows.checkpoints import open_sqlite_checkpoints
from services.workflows.clients import UpstreamError
from services.workflows.engine import WorkflowEngine
from services.workflows.steps import StepProgress, WorkflowType, acting_for, progress_sink, step
from services.workflows.store import Event, WorkflowStore
from services.workflows.store_sqlite import SCHEMA, SqliteWorkflowStore
from services.workflows.types.code_analysis import CODE_ANALYSIS

ANALYSIS = {
    "id": "r1",
    "findings": [{"rule_id": "PY001", "severity": "SEVERITY_MEDIUM", "file": "a.py", "line": 1}],
    "summary": "s",
    "metrics": {},
    "usage": {"files_analyzed": 1},
    "llm_status": "LLM_STATUS_NOT_CONFIGURED",
}
INVENTORY = {
    "total_files": 1,
    "total_lines": 2,
    "languages": [{"language": "Python", "files": 1, "lines": 2}],
    "files": [],
}
DEADLINE = 10.0


class FakeCalls:
    """Records every call; each side can be made to block on an event or to raise."""

    def __init__(self, *, rendezvous: bool = False) -> None:
        # With rendezvous, each call waits until the other one has started: only parallel steps can finish.
        self.rendezvous = asyncio.Event() if rendezvous else None
        self.agent_calls: list[tuple[str, dict[str, Any], str]] = []
        self.tool_calls: list[tuple[str, dict[str, Any], str]] = []
        self.agent_gate: asyncio.Event | None = None
        self.tool_gate: asyncio.Event | None = None
        self.agent_error: Exception | None = None
        self.agent_progress: list[StepProgress] = []  # reported to the step, as the agents service streams them
        self.callers: list[tuple[str, Identity]] = []  # (idempotency key, whom the call was made for)

    async def run_agent(self, agent: str, inputs: dict[str, Any], key: str) -> dict[str, Any]:
        self.agent_calls.append((agent, inputs, key))
        self.callers.append((key, acting_for()))
        await self._meet()
        sink = progress_sink()
        for report in self.agent_progress:
            assert sink is not None, "a step's calls have a progress sink"
            await sink(report)
        if self.agent_gate is not None:
            await self.agent_gate.wait()
        if self.agent_error is not None:
            raise self.agent_error
        return dict(ANALYSIS)

    async def execute_tool(self, tool: str, arguments: dict[str, Any], key: str) -> dict[str, Any]:
        self.tool_calls.append((tool, arguments, key))
        self.callers.append((key, acting_for()))
        await self._meet()
        if self.tool_gate is not None:
            await self.tool_gate.wait()
        return dict(INVENTORY)

    async def _meet(self) -> None:
        if self.rendezvous is None:
            return
        if self.agent_calls and self.tool_calls:
            self.rendezvous.set()
        await self.rendezvous.wait()


async def eventually(condition: Callable[[], Any], what: str, timeout: float = DEADLINE) -> Any:
    """Polls `condition` (plain or async) on the running loop until it is truthy; fails at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        await asyncio.sleep(0.01)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


def ended(store: WorkflowStore, workflow_id: str) -> Callable[[], Awaitable[bool]]:
    async def done() -> bool:
        return (await store.get(workflow_id)).done

    return done


def types_of(events: list[Event]) -> list[str]:
    return [e.type for e in events]


@asynccontextmanager
async def engine_on(tmp_path: Path, calls: FakeCalls, types: Sequence[WorkflowType] = (CODE_ANALYSIS,)):
    """An engine over tmp_path/w.db and the service's checkpoint files in tmp_path running `types`; closed (runs left
    as they are) on exit."""
    database = SqliteDatabase(tmp_path / "w.db", SCHEMA)
    try:
        async with AsyncExitStack() as stack:
            saver = await open_sqlite_checkpoints(tmp_path, stack)
            engine = WorkflowEngine(SqliteWorkflowStore(database), calls, saver, list(types), [tmp_path])
            try:
                yield engine
            finally:
                await engine.close()
    finally:
        database.close()


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_code_analysis_succeeds_with_parallel_steps(tmp_path: Path) -> None:
    calls = FakeCalls(rendezvous=True)

    async def scenario() -> None:
        async with engine_on(tmp_path, calls) as engine:
            workflow = await engine.create("code_analysis", {"path": str(tmp_path)}, "")
            await eventually(ended(engine.store, workflow.id), "the workflow to end")
            done = await engine.store.get(workflow.id)
            assert done.state == "succeeded", done.error
            assert done.progress == 100
            assert [(s.name, s.state) for s in done.steps] == [
                ("analyze_code", "succeeded"), ("inventory_files", "succeeded"), ("merge", "succeeded"),
            ]
            assert all(s.started is not None and s.ended is not None for s in done.steps)

            events = await engine.store.events_after(workflow.id, 0)
            assert [e.sequence for e in events] == list(range(1, len(events) + 1))
            kinds = types_of(events)
            assert kinds[:2] == ["created", "started"]
            assert kinds[-3:] == ["step_started", "step_succeeded", "succeeded"]
            assert events[-3].step == events[-2].step == "merge"
            parallel = events[2:-3]
            assert sorted((e.type, e.step) for e in parallel) == [
                ("step_started", "analyze_code"), ("step_started", "inventory_files"),
                ("step_succeeded", "analyze_code"), ("step_succeeded", "inventory_files"),
            ]
            # Both branches started before either finished: they ran in parallel.
            assert types_of(parallel)[:2] == ["step_started", "step_started"]
            assert events[-1].state == "succeeded" and events[-1].progress == 100

            result = done.result
            assert result is not None
            assert result["findings"] == ANALYSIS["findings"]
            assert result["finding_counts"]["medium"] == 1
            assert result["inventory"] == INVENTORY
            assert result["agent_run"] == "r1"
            assert result["code_stats"] == {"files_analyzed": 1}

            assert [(a, i) for a, i, _ in calls.agent_calls] == [("code-analyzer", {"path": str(tmp_path)})]
            assert [(t, a) for t, a, _ in calls.tool_calls] == [("file_inventory", {"path": str(tmp_path)})]
            # (workflow, step): what stays the same when a step is re-run after a crash (test_workflow_durability).
            assert [calls.agent_calls[0][2], calls.tool_calls[0][2]] == [f"{workflow.id}:analyze_code",
                                                                          f"{workflow.id}:inventory_files"]
            await eventually(lambda: engine.active == 0, "the run to release its lease and end")

    run(scenario)


def test_the_idle_event_is_clear_while_the_engine_holds_a_run(tmp_path: Path) -> None:
    calls = FakeCalls()
    gate = calls.agent_gate = asyncio.Event()

    async def scenario() -> None:
        async with engine_on(tmp_path, calls) as engine:
            assert engine.idle.is_set()
            workflow = await engine.create("code_analysis", {"path": str(tmp_path)}, "")
            assert not engine.idle.is_set() and engine.active == 1
            await eventually(lambda: calls.agent_calls, "the agent step to start")
            assert not engine.idle.is_set()
            gate.set()
            await asyncio.wait_for(engine.idle.wait(), DEADLINE)
            assert engine.active == 0
            assert (await engine.store.get(workflow.id)).state == "succeeded"  # idle only after the run's end

    run(scenario)


def test_agent_progress_inside_a_step_is_recorded_as_step_progress_events(tmp_path: Path) -> None:
    calls = FakeCalls()
    calls.agent_progress = [StepProgress("analysing files", 0.9 * n / 40, n, 40) for n in (0, 10, 20, 40)]

    async def scenario() -> None:
        async with engine_on(tmp_path, calls) as engine:
            workflow = await engine.create("code_analysis", {"path": str(tmp_path)}, "")
            await eventually(ended(engine.store, workflow.id), "the workflow to end")
            events = await engine.store.events_after(workflow.id, 0)
            progress = [e for e in events if e.type == "step_progress"]
            assert [(e.step, e.items_done, e.items_total) for e in progress] == [
                ("analyze_code", 0, 40), ("analyze_code", 10, 40), ("analyze_code", 20, 40), ("analyze_code", 40, 40)]
            assert progress[-1].message == "analyze_code analysing files: 40 of 40"
            assert all(e.steps_total == 3 and e.steps_done <= 1 for e in progress)  # inventory may finish first
            percents = [e.progress for e in events]
            assert percents == sorted(percents) and percents[-1] == 100  # never goes back
            assert progress[-1].progress >= 30  # 0.9 of one step of three
            assert [e.steps_done for e in events if e.type in ("step_succeeded", "succeeded")] == [1, 2, 3, 3]
            first = types_of(events).index("step_progress")
            assert "step_started" in types_of(events)[:first]  # progress only between the step's start and end

    run(scenario)


def test_reused_request_id_does_not_start_a_second_run(tmp_path: Path) -> None:
    calls = FakeCalls()

    async def scenario() -> None:
        async with engine_on(tmp_path, calls) as engine:
            first = await engine.create("code_analysis", {"path": str(tmp_path)}, "req-1")
            again = await engine.create("code_analysis", {"path": str(tmp_path)}, "req-1")
            assert again.id == first.id
            await eventually(ended(engine.store, first.id), "the workflow to end")
            assert len(calls.agent_calls) == 1
            listed, _ = await engine.store.list("", 0, 10)
            assert len(listed) == 1

    run(scenario)


def test_failing_step_fails_the_workflow_with_its_error(tmp_path: Path) -> None:
    calls = FakeCalls()
    calls.agent_error = InvalidArgument.field("input.path", "bad")

    async def scenario() -> None:
        async with engine_on(tmp_path, calls) as engine:
            workflow = await engine.create("code_analysis", {"path": str(tmp_path)}, "")
            await eventually(ended(engine.store, workflow.id), "the workflow to end")
            failed = await engine.store.get(workflow.id)
            assert failed.state == "failed"
            assert failed.result is None
            assert failed.error is not None
            assert failed.error["reason"] == "INVALID_ARGUMENT"
            assert failed.error["message"] == "input.path: bad"
            analyze = next(s for s in failed.steps if s.name == "analyze_code")
            assert analyze.state == "failed" and analyze.error == "input.path: bad"
            assert next(s for s in failed.steps if s.name == "merge").state == "pending"

            events = await engine.store.events_after(workflow.id, 0)
            step_failed = [e for e in events if e.type == "step_failed"]
            assert [e.step for e in step_failed] == ["analyze_code"]
            assert events[-1].type == "failed" and events[-1].state == "failed"
            assert "merge" not in {e.step for e in events}
            # The step's status code is kept, so callers see why it failed.
            assert failed.error["code"] == "INVALID_ARGUMENT"

    run(scenario)


def test_upstream_error_keeps_the_remote_code_and_reason(tmp_path: Path) -> None:
    calls = FakeCalls()
    calls.agent_error = UpstreamError(
        "agents", grpc.aio.AioRpcError(grpc.StatusCode.NOT_FOUND, grpc.aio.Metadata(), grpc.aio.Metadata(), "no agent")
    )

    async def scenario() -> None:
        async with engine_on(tmp_path, calls) as engine:
            workflow = await engine.create("code_analysis", {"path": str(tmp_path)}, "")
            await eventually(ended(engine.store, workflow.id), "the workflow to end")
            failed = await engine.store.get(workflow.id)
            assert failed.state == "failed"
            assert failed.error == {"code": "NOT_FOUND", "reason": "NOT_FOUND", "message": "agents: no agent"}

    run(scenario)


def test_a_short_steps_start_and_end_share_one_write(tmp_path: Path) -> None:
    """A step's start is written behind its body: a step that ends at once has its start and end in one write."""
    calls = FakeCalls()

    async def scenario() -> None:
        async with engine_on(tmp_path, calls) as engine:
            real = engine.store.record_all
            writes: list[list[tuple[str, str]]] = []

            async def counted(workflow: Any, drafts: Any) -> Any:
                writes.append([(d.type, d.step) for d in drafts])
                return await real(workflow, drafts)

            engine.store.record_all = counted  # type: ignore[method-assign]
            workflow = await engine.create("code_analysis", {"path": str(tmp_path)}, "")
            await eventually(ended(engine.store, workflow.id), "the workflow to end")
            assert [("step_started", "merge"), ("step_succeeded", "merge")] in writes
            assert writes[-1] == [("succeeded", "")]
            events = await engine.store.events_after(workflow.id, 0)
            assert len(writes) < len(events) - 2  # fewer writes than events after the creating write's two
            for name in ("analyze_code", "inventory_files", "merge"):
                kinds = [e.type for e in events if e.step == name]
                assert kinds == ["step_started", "step_succeeded"], (name, kinds)

    run(scenario)


def test_a_failed_write_of_a_steps_start_fails_the_step(tmp_path: Path) -> None:
    """The body runs before its start is written, but the step does not succeed unless that write did."""
    calls = FakeCalls()

    async def scenario() -> None:
        calls.agent_gate, calls.tool_gate = asyncio.Event(), asyncio.Event()  # the ends come in later writes
        async with engine_on(tmp_path, calls) as engine:
            real = engine.store.record_all
            failed_once: list[str] = []

            async def failing_starts(workflow: Any, drafts: Any) -> Any:
                if not failed_once and any(d.type == "step_started" for d in drafts):
                    failed_once.append(workflow.id)
                    raise sqlite3.OperationalError("disk I/O error")
                return await real(workflow, drafts)

            engine.store.record_all = failing_starts  # type: ignore[method-assign]
            workflow = await engine.create("code_analysis", {"path": str(tmp_path)}, "")
            await eventually(lambda: failed_once, "the write of the steps' starts to fail")
            calls.agent_gate.set()
            calls.tool_gate.set()
            await eventually(ended(engine.store, workflow.id), "the workflow to end")
            failed = await engine.store.get(workflow.id)
            assert failed.state == "failed", failed.state
            assert failed.error is not None and "disk I/O error" in failed.error["message"]
            events = await engine.store.events_after(workflow.id, 0)
            assert [e.type for e in events] == ["created", "started", "failed"]  # no end of a step never started
            assert [e.sequence for e in events] == [1, 2, 3]

    run(scenario)


def test_a_graph_that_ends_before_every_step_ran_fails_the_workflow(tmp_path: Path) -> None:
    """A run whose graph ends with a step never run (a join that did not fire) is not a success without a result."""
    from langgraph.graph import END, START, StateGraph

    def build(calls: Any, hook: Any) -> StateGraph:
        async def only(state: Any, runtime: Any) -> dict[str, Any]:
            return {}

        graph = StateGraph(dict)
        graph.add_node("only", step(hook, "only", only))
        graph.add_edge(START, "only")
        graph.add_edge("only", END)
        return graph

    short = WorkflowType(name="short", description="Declares a step its graph never reaches.", steps=["only", "never"],
                         parameters_schema={"type": "object"}, build=build, initial_state=lambda p: {},
                         path_parameters=())

    async def scenario() -> None:
        async with engine_on(tmp_path, FakeCalls(), [short]) as engine:
            workflow = await engine.create("short", {}, "")
            await eventually(ended(engine.store, workflow.id), "the workflow to end")
            failed = await engine.store.get(workflow.id)
            assert failed.state == "failed" and failed.result is None
            assert failed.error == {"code": "INTERNAL", "reason": "STEPS_NOT_RUN",
                                    "message": "the run ended before step(s) never ran"}
            assert [(s.name, s.state) for s in failed.steps] == [("only", "succeeded"), ("never", "pending")]

    run(scenario)


def test_unexpected_exception_is_recorded_as_internal(tmp_path: Path) -> None:
    calls = FakeCalls()
    calls.agent_error = RuntimeError("boom")

    async def scenario() -> None:
        async with engine_on(tmp_path, calls) as engine:
            workflow = await engine.create("code_analysis", {"path": str(tmp_path)}, "")
            await eventually(ended(engine.store, workflow.id), "the workflow to end")
            failed = await engine.store.get(workflow.id)
            assert failed.state == "failed"
            assert failed.error == {"code": "INTERNAL", "reason": "INTERNAL", "message": "RuntimeError: boom"}

    run(scenario)


@pytest.mark.parametrize(
    ("type_name", "parameters", "field", "reason"),
    [
        ("", {"path": "WORKSPACE"}, "workflow.type", "INVALID_ARGUMENT"),
        ("nope", {"path": "WORKSPACE"}, "workflow.type", "UNKNOWN_WORKFLOW_TYPE"),
        ("code_analysis", {}, "workflow.parameters.path", "INVALID_ARGUMENT"),
        ("code_analysis", {"path": "WORKSPACE", "depth": 3}, "workflow.parameters.depth", "INVALID_ARGUMENT"),
        ("code_analysis", {"path": 3}, "workflow.parameters.path", "INVALID_ARGUMENT"),
        # Folders are checked when the workflow is created, not later inside a step.
        ("code_analysis", {"path": "/"}, "workflow.parameters.path", "PATH_OUTSIDE_WORKSPACE"),
        ("code_analysis", {"path": "WORKSPACE/../.."}, "workflow.parameters.path", "PATH_OUTSIDE_WORKSPACE"),
        ("code_analysis", {"path": "WORKSPACE/missing"}, "workflow.parameters.path", "PATH_NOT_FOUND"),
    ],
)
def test_invalid_requests_are_refused_and_nothing_is_stored(
    tmp_path: Path, type_name: str, parameters: dict[str, Any], field: str, reason: str
) -> None:
    calls = FakeCalls()
    parameters = {k: v.replace("WORKSPACE", str(tmp_path)) if isinstance(v, str) else v for k, v in parameters.items()}

    async def scenario() -> None:
        async with engine_on(tmp_path, calls) as engine:
            with pytest.raises(InvalidArgument) as error:
                await engine.create(type_name, parameters, "req")
            assert [v.field for v in error.value.violations] == [field]
            assert error.value.reason == reason
            assert await engine.store.list("", 0, 10) == ([], False)
            assert await engine.store.changed_since(dt.datetime.min.replace(tzinfo=dt.UTC)) == []
            assert engine.active == 0
        assert calls.agent_calls == calls.tool_calls == []

    run(scenario)


def test_unknown_type_message_lists_known_types(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with engine_on(tmp_path, FakeCalls()) as engine:
            with pytest.raises(InvalidArgument) as error:
                engine.validate("nope", {"path": str(tmp_path)})
            assert "code_analysis" in error.value.message

    run(scenario)


def test_cancel_running_workflow(tmp_path: Path) -> None:
    calls = FakeCalls()

    async def scenario() -> None:
        calls.agent_gate = asyncio.Event()  # never set: the agent step blocks until cancelled
        async with engine_on(tmp_path, calls) as engine:
            workflow = await engine.create("code_analysis", {"path": str(tmp_path)}, "")
            await eventually(lambda: calls.agent_calls, "the agent step to start")
            cancelled = await engine.cancel(workflow.id)
            assert cancelled.state == "cancelled"
            assert (await engine.store.get(workflow.id)).state == "cancelled"
            analyze = next(s for s in cancelled.steps if s.name == "analyze_code")
            assert analyze.state == "cancelled"
            events = await engine.store.events_after(workflow.id, 0)
            assert events[-1].type == "cancelled"
            assert "step_failed" not in types_of(events)
            assert engine.active == 0
            with pytest.raises(FailedPrecondition) as again:
                await engine.cancel(workflow.id)
            assert again.value.reason == "WORKFLOW_ALREADY_ENDED"

    run(scenario)


def test_cancel_finished_workflow_is_refused(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with engine_on(tmp_path, FakeCalls()) as engine:
            workflow = await engine.create("code_analysis", {"path": str(tmp_path)}, "")
            await eventually(ended(engine.store, workflow.id), "the workflow to end")
            with pytest.raises(FailedPrecondition):
                await engine.cancel(workflow.id)
            assert (await engine.store.get(workflow.id)).state == "succeeded"

    run(scenario)


def test_watch_yields_every_event_and_ends(tmp_path: Path) -> None:
    calls = FakeCalls()

    async def scenario() -> None:
        calls.agent_gate = asyncio.Event()
        async with engine_on(tmp_path, calls) as engine:
            workflow = await engine.create("code_analysis", {"path": str(tmp_path)}, "")

            # Started while the workflow is still running: it must follow it to the end.
            watcher = asyncio.create_task(_collect(engine.watch(workflow.id, 0)))
            await eventually(lambda: calls.agent_calls, "the agent step to start")
            assert not watcher.done()
            calls.agent_gate.set()
            seen = await asyncio.wait_for(watcher, DEADLINE)
            stored = await engine.store.events_after(workflow.id, 0)
            assert seen == stored
            assert seen[-1].type == "succeeded"

            later = await asyncio.wait_for(_collect(engine.watch(workflow.id, 3)), DEADLINE)
            assert [e.sequence for e in later] == [e.sequence for e in stored if e.sequence > 3]
            assert await asyncio.wait_for(_collect(engine.watch(workflow.id, stored[-1].sequence)), DEADLINE) == []

    run(scenario)


def test_watch_batches_hold_the_events_of_each_write_together(tmp_path: Path) -> None:
    calls = FakeCalls()

    async def scenario() -> None:
        calls.agent_gate = asyncio.Event()
        async with engine_on(tmp_path, calls) as engine:
            workflow = await engine.create("code_analysis", {"path": str(tmp_path)}, "")
            watcher = asyncio.create_task(_collect(engine.watch_batches(workflow.id, 0)))
            await eventually(lambda: calls.agent_calls, "the agent step to start")
            calls.agent_gate.set()
            batches = await asyncio.wait_for(watcher, DEADLINE)
            stored = await engine.store.events_after(workflow.id, 0)
            assert [e for batch in batches for e in batch] == stored
            assert len(batches) < len(stored) and all(batches)
            assert batches[-1][-1].type == "succeeded"
            # An ended workflow's replay is one batch; one from a sequence number holds only what follows it.
            assert await asyncio.wait_for(_collect(engine.watch_batches(workflow.id, 0)), DEADLINE) == [stored]
            assert await asyncio.wait_for(_collect(engine.watch_batches(workflow.id, 4)), DEADLINE) == [stored[4:]]

    run(scenario)


def test_a_watch_started_while_the_last_event_is_written_still_gets_it(tmp_path: Path) -> None:
    """The held copy says the run ended before the write of its terminal event is done: a watcher that starts in
    between must still wait for that event (it ended early without it, once in fifty under load)."""
    calls = FakeCalls()

    async def scenario() -> None:
        calls.agent_gate = asyncio.Event()
        async with engine_on(tmp_path, calls) as engine:
            real = engine.store.record_all
            writing_the_end = asyncio.Event()

            async def slow_at_the_end(workflow: Any, drafts: Any) -> Any:
                if workflow.done:
                    writing_the_end.set()
                    await asyncio.sleep(0.3)
                return await real(workflow, drafts)

            engine.store.record_all = slow_at_the_end  # type: ignore[method-assign]
            workflow = await engine.create("code_analysis", {"path": str(tmp_path)}, "")
            calls.agent_gate.set()
            await asyncio.wait_for(writing_the_end.wait(), DEADLINE)
            seen = await asyncio.wait_for(_collect(engine.watch(workflow.id, 0)), DEADLINE)
            assert seen[-1].type == "succeeded"
            assert [e.sequence for e in seen] == list(range(1, seen[-1].sequence + 1))

    run(scenario)


async def _collect(events: Any) -> list[Event]:
    return [event async for event in events]


def test_watch_refuses_bad_arguments(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with engine_on(tmp_path, FakeCalls()) as engine:
            with pytest.raises(InvalidArgument) as negative:
                await anext(engine.watch("some-id", -1))
            assert [v.field for v in negative.value.violations] == ["after_sequence"]
            with pytest.raises(InvalidArgument) as empty:
                await anext(engine.watch("", 0))
            assert [v.field for v in empty.value.violations] == ["id"]

    run(scenario)


def test_resume_after_close_skips_the_finished_step(tmp_path: Path) -> None:
    first_calls = FakeCalls()
    second_calls = FakeCalls()

    async def first_process() -> str:
        first_calls.agent_gate = asyncio.Event()  # the agent step is still running at shutdown
        async with engine_on(tmp_path, first_calls) as engine:
            workflow = await engine.create("code_analysis", {"path": str(tmp_path)}, "")

            async def inventory_done() -> bool:
                steps = {s.name: s.state for s in (await engine.store.get(workflow.id)).steps}
                return steps["inventory_files"] == "succeeded" and steps["analyze_code"] == "running"

            await eventually(inventory_done, "the inventory step to succeed while the agent blocks")
            # The hook reports success before LangGraph saves the step's writes; wait until they are in the file.
            async with AsyncExitStack() as stack:
                reader = await open_sqlite_checkpoints(tmp_path, stack)

                async def inventory_checkpointed() -> bool:
                    saved = await reader.aget_tuple({"configurable": {"thread_id": workflow.id}})
                    return saved is not None and any(channel == "inventory" for _, channel, _ in saved.pending_writes or [])

                deadline = time.monotonic() + DEADLINE
                while not await inventory_checkpointed():
                    assert time.monotonic() < deadline, "the inventory result never reached the checkpoint"
                    await asyncio.sleep(0.01)
        # close() stopped the run without ending it.
        database = SqliteDatabase(tmp_path / "w.db", SCHEMA)
        try:
            left = await SqliteWorkflowStore(database).get(workflow.id)
            assert left.state == "running"
            assert types_of(await SqliteWorkflowStore(database).events_after(workflow.id, 0))[-1] != "cancelled"
        finally:
            database.close()
        return workflow.id

    async def second_process(workflow_id: str) -> None:
        async with engine_on(tmp_path, second_calls) as engine:
            assert await engine.resume_unfinished() == 1
            await eventually(ended(engine.store, workflow_id), "the resumed workflow to end")
            done = await engine.store.get(workflow_id)
            assert done.state == "succeeded", done.error
            assert done.result is not None and done.result["inventory"] == INVENTORY
            assert done.result["findings"] == ANALYSIS["findings"]
            assert await engine.resume_unfinished() == 0
            # The agent step was running at the crash: watchers see it start once, then succeed.
            events = await engine.store.events_after(workflow_id, 0)
            starts = [e.step for e in events if e.type == "step_started"]
            assert sorted(starts) == ["analyze_code", "inventory_files", "merge"]

    async def scenario() -> None:
        workflow_id = await first_process()
        await second_process(workflow_id)

    run(scenario)
    assert len(first_calls.tool_calls) == 1
    assert second_calls.tool_calls == []  # its result was checkpointed before the close
    assert len(first_calls.agent_calls) == 1
    assert len(second_calls.agent_calls) == 1
    # The re-run step gets the same idempotency key, so the agent can return its first result.
    assert second_calls.agent_calls[0][2] == first_calls.agent_calls[0][2]


def test_running_workflow_without_a_checkpoint_starts_over(tmp_path: Path) -> None:
    """A process that died between `started` and the first checkpoint leaves nothing to resume from."""
    calls = FakeCalls()

    async def crashed_before_first_checkpoint() -> str:
        database = SqliteDatabase(tmp_path / "w.db", SCHEMA)
        try:
            store = SqliteWorkflowStore(database)
            workflow, _ = await store.create("code_analysis", {"path": str(tmp_path)}, CODE_ANALYSIS.steps, "")
            workflow.state = "running"
            await store.record(workflow, "started", "", "workflow started")
            return workflow.id
        finally:
            database.close()

    workflow_id = asyncio.run(crashed_before_first_checkpoint())

    async def scenario() -> None:
        async with engine_on(tmp_path, calls) as engine:
            assert await engine.resume_unfinished() == 1
            await eventually(ended(engine.store, workflow_id), "the restarted workflow to end")
            done = await engine.store.get(workflow_id)
            assert done.state == "succeeded", done.error
            assert done.result is not None and done.result["inventory"] == INVENTORY

    run(scenario)
    assert len(calls.agent_calls) == 1 and len(calls.tool_calls) == 1


def test_watch_all_sees_every_workflow_and_writes_of_other_processes(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with engine_on(tmp_path, FakeCalls()) as engine:
            before, _ = await engine.store.create("code_analysis", {"path": str(tmp_path)}, CODE_ANALYSIS.steps, "")
            start = await engine.feed_start()
            seen: list[Event] = []

            async def collect() -> None:
                async for event in engine.watch_all(start):
                    seen.append(event)

            watcher = asyncio.create_task(collect())
            # Another process writes through its own store on the same file: no notification reaches this one.
            other_db = SqliteDatabase(tmp_path / "w.db", SCHEMA)
            try:
                other = SqliteWorkflowStore(other_db)
                later, _ = await other.create("code_analysis", {"path": str(tmp_path)}, CODE_ANALYSIS.steps, "")
                stale = await other.get(before.id)
                stale.state = "running"
                await other.record(stale, "started", "", "elsewhere")
            finally:
                other_db.close()
            await eventually(lambda: len(seen) >= 2, "the other process's events")
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
            # Nothing from before the start is replayed; each workflow's events come once, in order.
            assert [(e.workflow_id, e.sequence) for e in seen if e.workflow_id == before.id] == [(before.id, 2)]
            assert [e.sequence for e in seen if e.workflow_id == later.id] == [1]

    run(scenario)


async def test_a_workflow_file_of_an_older_version_gets_the_trace_and_creator_columns(tmp_path: Path) -> None:
    old = sqlite3.connect(tmp_path / "w.db")
    old.executescript(SCHEMA.replace(",\n    traceparent TEXT NOT NULL DEFAULT '',\n    creator TEXT NOT NULL DEFAULT ''", ""))
    old.execute("INSERT INTO workflows (id, type, parameters, state, steps, create_time, update_time) "
                "VALUES ('old', 'code_analysis', '{}', 'succeeded', '[]', '2026-01-01T00:00:00+00:00', "
                "'2026-01-01T00:00:00+00:00')")
    old.commit()
    assert "traceparent" not in {row[1] for row in old.execute("PRAGMA table_info(workflows)")}
    old.close()
    database = SqliteDatabase(tmp_path / "w.db", SCHEMA)
    try:
        store = await SqliteWorkflowStore.open(database)
        assert (await store.get("old")).traceparent == ""
        assert (await store.get("old")).creator == ANONYMOUS  # its steps call as the service, as they did
        made, _ = await store.create("code_analysis", {}, ["a"], "", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
        assert (await store.get(made.id)).trace_id == "0af7651916cd43dd8448eb211c80319c"
    finally:
        database.close()


def test_the_steps_call_as_the_workflows_creator(tmp_path: Path) -> None:
    calls = FakeCalls()
    creator = Identity("key:k1", "operator", ("file_*",))

    async def scenario() -> None:
        async with engine_on(tmp_path, calls) as engine:
            made = await engine.create("code_analysis", {"path": str(tmp_path)}, "", creator)
            anonymous = await engine.create("code_analysis", {"path": str(tmp_path)}, "")
            for workflow in (made, anonymous):
                await eventually(ended(engine.store, workflow.id), "the workflow to end")
            assert (await engine.store.get(made.id)).creator == creator
        assert sorted(calls.callers, key=lambda c: c[0]) == sorted(
            [(f"{made.id}:analyze_code", creator), (f"{made.id}:inventory_files", creator),
             (f"{anonymous.id}:analyze_code", ANONYMOUS), (f"{anonymous.id}:inventory_files", ANONYMOUS)],
            key=lambda c: c[0])

    run(scenario)
