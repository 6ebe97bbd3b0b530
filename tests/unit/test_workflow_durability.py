"""Durability of runs across engines sharing one store: leases, take-over, cancel, transient retries, retention, queue."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import grpc
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.runtime import tracing
from services.runtime.identity import Identity
from services.runtime.state import SqliteDatabase
from services.workflows import steps
from services.workflows.checkpoints import open_sqlite_checkpoints
from services.workflows.clients import UpstreamError
from services.workflows.engine import Durability, WorkflowEngine
from services.workflows.store_sqlite import SCHEMA, SqliteWorkflowStore
from services.workflows.types.code_analysis import CODE_ANALYSIS
from tests.unit.test_workflow_engine import ANALYSIS, FakeCalls, ended, eventually, types_of

LEASE = 0.4


@asynccontextmanager
async def engines(tmp_path: Path, *calls: FakeCalls, **settings: float) -> AsyncIterator[list[WorkflowEngine]]:
    """One engine per FakeCalls, each like a separate instance: own store connection and checkpointer, shared files."""
    async with AsyncExitStack() as stack:
        made = []
        for n, fake in enumerate(calls):
            database = SqliteDatabase(tmp_path / "w.db", SCHEMA)
            stack.callback(database.close)
            saver = await open_sqlite_checkpoints(tmp_path, stack)  # the same files, as instances share them
            durability = Durability(lease_seconds=settings.get("lease", LEASE), owner=f"instance-{n}",
                                    max_active=int(settings.get("max_active", 50)),
                                    retention_seconds=settings.get("retention", 3600.0))
            engine = WorkflowEngine(SqliteWorkflowStore(database), fake, saver, [CODE_ANALYSIS], [tmp_path], durability)
            stack.push_async_callback(engine.close)
            made.append(engine)
        yield made


def crash(engine: WorkflowEngine) -> None:
    """Stops an engine the way SIGKILL would: no release, no event, its lease left to expire."""
    engine._closing = True
    if engine._maintainer is not None:
        engine._maintainer.cancel()
    for task in list(engine._tasks.values()):
        task.cancel()


def transient_error(code: grpc.StatusCode) -> UpstreamError:
    return UpstreamError("agents", grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), "try later"))


async def test_a_run_whose_instance_dies_is_taken_over_and_resumed(tmp_path: Path) -> None:
    first, second = FakeCalls(), FakeCalls()
    first.agent_gate = asyncio.Event()  # the agent step is in flight when the first instance dies
    async with engines(tmp_path, first, second) as (a, b):
        a.start()
        workflow = await a.create("code_analysis", {"path": str(tmp_path)}, "")
        await eventually(lambda: first.agent_calls and first.tool_calls, "both steps to start on the first instance")
        await asyncio.sleep(0.2)  # the inventory step's writes reach the checkpoint
        assert await b.resume_unfinished() == 0  # the lease is alive: the second instance leaves it alone
        crash(a)
        b.start()
        await eventually(ended(b.store, workflow.id), "the second instance to finish the run")
        done = await b.store.get(workflow.id)
        assert done.state == "succeeded", done.error
        events = await b.store.events_after(workflow.id, 0)
        assert [e.sequence for e in events] == list(range(1, len(events) + 1))
        kinds = types_of(events)
        assert kinds.count("resumed") == 1 and "instance-1" in events[kinds.index("resumed")].message
        assert sorted(e.step for e in events if e.type == "step_started") == ["analyze_code", "inventory_files", "merge"]
        assert sorted(e.step for e in events if e.type == "step_succeeded") == ["analyze_code", "inventory_files", "merge"]
        assert kinds[-1] == "succeeded"
    assert second.tool_calls == []  # finished before the crash: not run again
    assert [key for _, _, key in second.agent_calls] == [first.agent_calls[0][2]]  # same idempotency key


async def test_cancel_on_another_instance_stops_the_run_and_is_recorded(tmp_path: Path) -> None:
    holder, other = FakeCalls(), FakeCalls()
    holder.agent_gate = asyncio.Event()
    async with engines(tmp_path, holder, other) as (a, b):
        a.start()
        workflow = await a.create("code_analysis", {"path": str(tmp_path)}, "")
        await eventually(lambda: holder.agent_calls, "the agent step to start")
        cancelled = await b.cancel(workflow.id)
        assert cancelled.state == "cancelled"
        events = await b.store.events_after(workflow.id, 0)
        assert types_of(events)[-1] == "cancelled"
        assert types_of(events).count("cancelled") == 1
        await eventually(lambda: a.active == 0, "the holder to stop its run")
    assert other.agent_calls == other.tool_calls == []


async def test_cancel_of_a_workflow_nobody_holds_ends_it_at_once(tmp_path: Path) -> None:
    calls = FakeCalls()
    async with engines(tmp_path, calls, max_active=0) as (engine,):
        workflow = await engine.create("code_analysis", {"path": str(tmp_path)}, "")
        assert (await engine.store.get(workflow.id)).state == "pending"  # no room: queued
        assert (await engine.cancel(workflow.id)).state == "cancelled"
        assert await engine.store.claimable(workflow.created) == []
    assert calls.agent_calls == []


async def test_transient_failures_are_retried_with_the_same_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(steps, "RETRY", steps.Backoff(attempts=3, first=0.01, most=0.02))
    calls = FakeCalls()
    errors = [transient_error(grpc.StatusCode.UNAVAILABLE), transient_error(grpc.StatusCode.RESOURCE_EXHAUSTED)]
    original = calls.run_agent

    async def flaky(agent: str, inputs: dict, key: str) -> dict:
        if errors:
            calls.agent_calls.append((agent, inputs, key))
            raise errors.pop(0)
        return await original(agent, inputs, key)

    calls.run_agent = flaky  # type: ignore[method-assign]
    async with engines(tmp_path, calls) as (engine,):
        workflow = await engine.create("code_analysis", {"path": str(tmp_path)}, "")
        await eventually(ended(engine.store, workflow.id), "the workflow to end")
        done = await engine.store.get(workflow.id)
        assert done.state == "succeeded", done.error
        assert done.result is not None and done.result["findings"] == ANALYSIS["findings"]
    assert len(calls.agent_calls) == 3
    assert len({key for _, _, key in calls.agent_calls}) == 1


@pytest.mark.parametrize(
    ("code", "calls_made"),
    [(grpc.StatusCode.INVALID_ARGUMENT, 1), (grpc.StatusCode.DEADLINE_EXCEEDED, 3)],
)
async def test_a_step_that_keeps_failing_fails_the_workflow_with_its_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: grpc.StatusCode, calls_made: int
) -> None:
    monkeypatch.setattr(steps, "RETRY", steps.Backoff(attempts=3, first=0.01, most=0.02))
    calls = FakeCalls()
    calls.agent_error = transient_error(code)
    async with engines(tmp_path, calls) as (engine,):
        workflow = await engine.create("code_analysis", {"path": str(tmp_path)}, "")
        await eventually(ended(engine.store, workflow.id), "the workflow to end")
        failed = await engine.store.get(workflow.id)
        assert failed.state == "failed"
        assert failed.error is not None and failed.error["code"] == code.name
        assert [s.state for s in failed.steps if s.name == "analyze_code"] == ["failed"]
    assert len(calls.agent_calls) == calls_made


async def test_a_lost_lease_stops_the_run_without_writing(tmp_path: Path) -> None:
    calls = FakeCalls()
    calls.agent_gate = asyncio.Event()
    async with engines(tmp_path, calls) as (engine,):
        engine.start()
        workflow = await engine.create("code_analysis", {"path": str(tmp_path)}, "")
        await eventually(lambda: calls.agent_calls, "the agent step to start")

        async def inventory_done() -> bool:
            return [s.state for s in (await engine.store.get(workflow.id)).steps][1] == "succeeded"

        await eventually(inventory_done, "the inventory step to succeed")
        before = len(await engine.store.events_after(workflow.id, 0))
        # Another owner takes the lease (as if this instance had stalled past its lease).
        await engine.store.release(workflow.id, engine.owner)
        assert await engine.store.claim(workflow.id, "thief", workflow.created, workflow.created.replace(year=2100))
        await eventually(lambda: engine.active == 0, "the run to stop at the next heartbeat")
        left = await engine.store.get(workflow.id)
        assert left.state == "running"
        assert len(await engine.store.events_after(workflow.id, 0)) == before  # nothing written after the loss


async def test_queued_workflows_wait_for_room_and_are_counted(tmp_path: Path) -> None:
    calls = FakeCalls()
    calls.agent_gate = asyncio.Event()
    async with engines(tmp_path, calls, max_active=1) as (engine,):
        engine.start()
        first = await engine.create("code_analysis", {"path": str(tmp_path)}, "")
        second = await engine.create("code_analysis", {"path": str(tmp_path)}, "")
        assert (await engine.store.get(second.id)).state == "pending"
        await eventually(lambda: engine.queue_depth == 1, "the queue depth to show the waiting workflow")
        calls.agent_gate.set()
        await eventually(ended(engine.store, first.id), "the first workflow to end")
        await eventually(ended(engine.store, second.id), "the queued workflow to run and end")
        assert (await engine.store.get(second.id)).state == "succeeded"
        await eventually(lambda: engine.queue_depth == 0, "the queue to empty")


async def test_retention_prunes_checkpoints_and_keeps_the_record(tmp_path: Path) -> None:
    calls = FakeCalls()
    async with engines(tmp_path, calls, retention=0.0) as (engine,):
        workflow = await engine.create("code_analysis", {"path": str(tmp_path)}, "")
        await eventually(ended(engine.store, workflow.id), "the workflow to end")
        graph = engine._graphs["code_analysis"]
        config = {"configurable": {"thread_id": workflow.id}}
        assert (await graph.aget_state(config)).values  # type: ignore[arg-type]
        await asyncio.sleep(0.01)
        assert await engine.prune() == 1
        assert not (await graph.aget_state(config)).values  # type: ignore[arg-type]
        assert await engine.prune() == 0
        kept = await engine.store.get(workflow.id)
        assert kept.state == "succeeded" and kept.result is not None
        assert types_of(await engine.store.events_after(workflow.id, 0))[-1] == "succeeded"


@pytest.fixture()
def spans(monkeypatch: pytest.MonkeyPatch) -> InMemorySpanExporter:
    """Spans of this test, kept in memory: the tracing module's tracer swapped for one of a private provider."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(tracing, "_tracer", provider.get_tracer("test"))
    return exporter


async def test_the_record_keeps_its_trace_and_a_resumed_run_continues_it(
    tmp_path: Path, spans: InMemorySpanExporter
) -> None:
    first, second = FakeCalls(), FakeCalls()
    first.agent_gate = asyncio.Event()
    async with engines(tmp_path, first, second) as (a, b):
        a.start()
        with tracing.span("CreateWorkflow") as creating:  # what the gRPC instrumentation makes of the call
            workflow = await a.create("code_analysis", {"path": str(tmp_path)}, "")
        trace_id = creating.get_span_context().trace_id
        assert workflow.trace_id == format(trace_id, "032x")
        assert (await b.store.get(workflow.id)).traceparent == workflow.traceparent
        await eventually(lambda: first.agent_calls, "the agent step to start on the first instance")
        crash(a)
        b.start()  # the sweeper's task has no trace of its own: the run joins the stored one
        await eventually(ended(b.store, workflow.id), "the second instance to finish the run")
    runs = [s for s in spans.get_finished_spans() if s.name == "workflow.run"]
    assert sorted(bool(s.attributes and s.attributes["mcpmesh.resumed"]) for s in runs) == [False, True]
    assert all(s.context.trace_id == trace_id and s.parent is not None
               and s.parent.span_id == creating.get_span_context().span_id for s in runs)
    steps_seen = [s for s in spans.get_finished_spans() if s.name == "workflow.step"]
    assert {s.attributes["mcpmesh.step"] for s in steps_seen if s.attributes} == {"analyze_code", "inventory_files", "merge"}
    assert all(s.context.trace_id == trace_id for s in steps_seen)


async def test_a_run_resumed_on_another_instance_still_calls_as_the_workflows_creator(tmp_path: Path) -> None:
    first, second = FakeCalls(), FakeCalls()
    first.agent_gate = asyncio.Event()
    creator = Identity("key:k1", "operator", ("file_*",))
    async with engines(tmp_path, first, second) as (a, b):
        a.start()
        workflow = await a.create("code_analysis", {"path": str(tmp_path)}, "", creator)
        await eventually(lambda: first.agent_calls, "the agent step to start on the first instance")
        crash(a)
        b.start()
        await eventually(ended(b.store, workflow.id), "the second instance to finish the run")
    assert first.callers and {who for _, who in first.callers} == {creator}
    assert [key for key, _ in second.callers] == [f"{workflow.id}:analyze_code"]  # the inventory was done
    assert {who for _, who in second.callers} == {creator}


def test_a_step_keeps_its_idempotency_key_when_langgraph_gives_it_new_ids() -> None:
    """LangGraph saves a superstep's checkpoint while its steps already run; a crash before that save resumes the
    step under a new checkpoint id and task id. The key must not change with them, or the step would act twice."""
    from langgraph.runtime import ExecutionInfo, Runtime

    seen: list[str] = []

    async def body(state: dict[str, str], runtime: Runtime[None]) -> dict[str, str]:
        seen.append(steps.idempotency_key(runtime))
        return {}

    async def hook(*_: object) -> None:
        return None

    def runtime(checkpoint: str, task: str) -> Runtime[None]:
        return Runtime(execution_info=ExecutionInfo(checkpoint_id=checkpoint, checkpoint_ns="", task_id=task, thread_id="w1"))

    async def scenario() -> None:
        await steps.step(hook, "analyze_code", body)({}, runtime("c1", "t1"))
        await steps.step(hook, "analyze_code", body)({}, runtime("c2", "t2"))  # the same step after a crash
        await steps.step(hook, "inventory_files", body)({}, runtime("c1", "t3"))

    asyncio.run(scenario())
    assert seen[0] == seen[1] == "w1:analyze_code"
    assert seen[2] == "w1:inventory_files"
    assert steps.idempotency_key(runtime("c1", "t1")) == ""  # outside a step there is no key
