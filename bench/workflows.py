"""Workflow overhead: the workflows service against raw LangGraph on the same graph and the same checkpointer.

200 workflows of a trivial three-step graph (two parallel steps, then a merge), run two ways in one process:
  service   gRPC CreateWorkflow, then WatchWorkflow with batch (the events of one write in one message) read to its
            end (the terminal event, then the stream's close), on a real grpc.aio server with the WorkflowServicer and
            WorkflowEngine: SQLite store, run lease, step records, event log, notifier
  raw       graph.ainvoke on the same graph (no hooks), with AsyncSqliteSaver on its own file
each sequentially and with 16 concurrent callers, interleaved in rounds (medians), on asyncio's own event loop or
(--uvloop) on uvloop, the loop the services run on. The service's time runs until it holds no run: LangGraph's last
checkpoint writes, which go on after a workflow has ended, are counted. Target: service time per workflow <= 1.5x
raw. Event latency, in rounds of its own after those: from a step's body returning to the watcher receiving its
STEP_SUCCEEDED event, p50 and p99 with 1 and 16 callers. In those rounds each step first waits until its workflow's
watch has its first message: a trivial run is otherwise over before a watch that follows CreateWorkflow begins, and
the watcher would only ever get a replay."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import operator
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypedDict

import grpc
import uvloop
from google.protobuf import struct_pb2
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from mcpmesh.workflows.v1 import workflow_pb2, workflow_service_pb2, workflow_service_pb2_grpc

from services.runtime.state import SqliteDatabase
from services.workflows.checkpoints import open_sqlite_checkpoints
from services.workflows.engine import WorkflowEngine
from services.workflows.servicer import WorkflowServicer
from services.workflows.steps import StepHook, WorkflowType, step, workflow_id
from services.workflows.store_sqlite import SCHEMA, SqliteWorkflowStore

TERMINAL = {workflow_pb2.WORKFLOW_EVENT_TYPE_SUCCEEDED, workflow_pb2.WORKFLOW_EVENT_TYPE_FAILED,
            workflow_pb2.WORKFLOW_EVENT_TYPE_CANCELLED}
FINISHED: dict[tuple[str, str], float] = {}  # (workflow, step) -> when its body returned


class Gates:
    """In the event latency rounds: each step waits until its workflow's watch is live (opened by the watcher)."""

    def __init__(self) -> None:
        self.on = False
        self._gates: dict[str, asyncio.Event] = {}

    def open(self, workflow: str) -> None:
        if self.on:
            self._gates.setdefault(workflow, asyncio.Event()).set()

    async def passed(self, runtime: Runtime[Any]) -> None:
        if self.on:
            async with asyncio.timeout(10):
                await self._gates.setdefault(workflow_id(runtime), asyncio.Event()).wait()


GATES = Gates()


class TrivialState(TypedDict, total=False):
    a: int
    b: int
    result: dict[str, Any]
    completed: Annotated[list[str], operator.add]


async def _a(state: TrivialState, runtime: Runtime[Any]) -> dict[str, Any]:
    await GATES.passed(runtime)
    FINISHED[(workflow_id(runtime), "a")] = time.perf_counter()
    return {"a": 1}


async def _b(state: TrivialState, runtime: Runtime[Any]) -> dict[str, Any]:
    await GATES.passed(runtime)
    FINISHED[(workflow_id(runtime), "b")] = time.perf_counter()
    return {"b": 2}


async def _merge(state: TrivialState, runtime: Runtime[Any]) -> dict[str, Any]:
    await GATES.passed(runtime)
    FINISHED[(workflow_id(runtime), "merge")] = time.perf_counter()
    return {"result": {"sum": state["a"] + state["b"]}}


def graph(hook: StepHook | None) -> StateGraph:
    built = StateGraph(TrivialState)
    for name, body in (("a", _a), ("b", _b), ("merge", _merge)):
        built.add_node(name, step(hook, name, body) if hook else body)
    built.add_edge(START, "a")
    built.add_edge(START, "b")
    built.add_edge(["a", "b"], "merge")
    built.add_edge("merge", END)
    return built


TRIVIAL = WorkflowType(
    name="trivial", description="Two parallel steps, then a merge.", steps=["a", "b", "merge"],
    parameters_schema={"type": "object", "additionalProperties": False}, build=lambda calls, hook: graph(hook),
    initial_state=lambda parameters: {}, path_parameters=(),
)


async def service_one(stub: Any, latencies: list[float] | None) -> None:  # an aio stub; generated types are sync
    """One workflow through the service; `latencies` (a service in this process, GATES on) gets the event latency of
    each step: its first message opens the workflow's gate, and the steps end after it."""
    created = await stub.CreateWorkflow(workflow_service_pb2.CreateWorkflowRequest(
        workflow=workflow_pb2.Workflow(type="trivial", parameters=struct_pb2.Struct())))
    ended = False
    request = workflow_service_pb2.WatchWorkflowRequest(id=created.workflow.id, batch=True)
    # Read to the stream's end, as a client does: one left after the terminal event is cancelled, and that costs the
    # service more than the stream's closing message.
    async for message in stub.WatchWorkflow(request):
        GATES.open(created.workflow.id)  # the watch is live (opened again by later messages: no change)
        for event in message.events:
            if latencies is not None and event.type == workflow_pb2.WORKFLOW_EVENT_TYPE_STEP_SUCCEEDED:
                latencies.append(time.perf_counter() - FINISHED[(event.workflow_id, event.step)])
            if event.type in TERMINAL:
                assert event.type == workflow_pb2.WORKFLOW_EVENT_TYPE_SUCCEEDED, event.message
                ended = True
    assert ended, f"the watch of {created.workflow.id} ended before the workflow"


async def raw_one(compiled: Any, n: int) -> None:
    result = await compiled.ainvoke({}, {"configurable": {"thread_id": f"raw-{n}-{time.perf_counter_ns()}"}})
    assert result["result"] == {"sum": 3}


Settle = Callable[[], Awaitable[object]]


async def timed(work: Any, count: int, callers: int, settle: Settle | None = None) -> float:
    """Seconds for `count` calls of work(n) with `callers` at a time, and then for `settle` (the service's runs to
    finish LangGraph's last checkpoint writes, which go on after each workflow's end: they are its work too)."""
    queue = iter(range(count))

    async def caller() -> None:
        for n in queue:
            await work(n)

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(callers)))
    if settle is not None:
        await settle()
    return time.perf_counter() - started


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


@contextlib.asynccontextmanager
async def serving(root: Path) -> AsyncIterator[tuple[int, WorkflowEngine]]:
    """The workflows service with the trivial type on a real grpc.aio server on loopback; yields its port and
    engine."""
    database = SqliteDatabase(root / "workflows.db", SCHEMA)
    async with contextlib.AsyncExitStack() as stack:
        saver = await open_sqlite_checkpoints(root, stack)  # as the service opens them
        engine = WorkflowEngine(SqliteWorkflowStore(database), None, saver, [TRIVIAL], [])  # type: ignore[arg-type]
        engine.start()
        server = grpc.aio.server()
        workflow_service_pb2_grpc.add_WorkflowServiceServicer_to_server(WorkflowServicer(engine), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            yield port, engine
        finally:
            await server.stop(None)
            await engine.close()
            database.close()


@contextlib.asynccontextmanager
async def running_service(root: Path) -> AsyncIterator[tuple[Any, Settle]]:
    """The service (serving) in this process; yields a stub to it and a wait until it holds no run."""
    async with serving(root) as (port, engine), grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield workflow_service_pb2_grpc.WorkflowServiceStub(channel), engine.idle.wait


async def serve(root: Path, port_file: Path) -> None:
    """The service in a process of its own (bench-peers: like the peer server): writes its port, and whether it holds
    any run ("0" when idle, "1" when not) to `port_file`.active each time that changes, until killed. While it holds
    runs it waits for the engine's idle event; only an idle service checks for new runs, every millisecond."""

    def write(busy: str) -> None:
        draft.write_text(busy)
        draft.replace(counter)  # whole: a reader never sees it half written

    async with serving(root) as (port, engine):
        port_file.write_text(str(port))
        counter, draft = port_file.with_suffix(".active"), port_file.with_suffix(".active-draft")
        write("0")
        while True:
            if engine.idle.is_set():
                await asyncio.sleep(0.001)
                continue
            write("1")
            await engine.idle.wait()
            write("0")


async def main(count: int, rounds: int) -> None:
    latencies: dict[int, list[float]] = {1: [], 16: []}
    times: dict[tuple[str, int], list[float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        async with running_service(root) as (stub, settle), \
                AsyncSqliteSaver.from_conn_string(str(root / "raw-checkpoints.db")) as raw_saver:
            await raw_saver.setup()
            raw = graph(None).compile(checkpointer=raw_saver)
            await timed(lambda n: service_one(stub, None), 10, 1, settle)  # warm-up of both paths
            await timed(lambda n: raw_one(raw, n), 10, 1)
            for _ in range(rounds):
                for callers in (1, 16):
                    times.setdefault(("service", callers), []).append(
                        await timed(lambda n: service_one(stub, None), count, callers, settle))
                    times.setdefault(("raw", callers), []).append(await timed(lambda n: raw_one(raw, n), count, callers))
            GATES.on = True
            for callers in (1, 16):
                await timed(lambda n: service_one(stub, latencies[callers]), count, callers, settle)

    print(f"workflows: {count} trivial three-step workflows (two parallel steps, then a merge), "
          f"median of {rounds} interleaved rounds, AsyncSqliteSaver on both paths")
    print(f"{'path':<10} {'callers':>7} {'ms/workflow':>12} {'workflows/s':>12}")
    for callers in (1, 16):
        for path in ("raw", "service"):
            seconds = statistics.median(times[(path, callers)])
            print(f"{path:<10} {callers:>7} {1000 * seconds / count:>12.2f} {count / seconds:>12.1f}")
    for callers in (1, 16):
        ratio = statistics.median(times[("service", callers)]) / statistics.median(times[("raw", callers)])
        print(f"overhead with {callers:>2} caller(s): service / raw = {ratio:.2f}x (target <= 1.5x)")
    for callers, values in latencies.items():
        print(f"event latency with {callers:>2} caller(s), step finished -> watcher: "
              f"p50 {1000 * percentile(values, 0.5):.2f} ms, p99 {1000 * percentile(values, 0.99):.2f} ms "
              f"({len(values)} events)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200, help="workflows per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the median is reported")
    parser.add_argument("--serve", type=Path, metavar="FOLDER",
                        help="only serve the service with its state in FOLDER, writing its port to FOLDER/port")
    parser.add_argument("--port-file", type=Path, help="with --serve: where to write the port instead")
    parser.add_argument("--uvloop", action="store_true",
                        help="run both paths on uvloop (the loop the services run on) instead of asyncio's own")
    args = parser.parse_args()
    if args.serve:  # the service alone, as it runs deployed: on uvloop (services/runtime/server.py)
        uvloop.run(serve(args.serve, args.port_file or args.serve / "port"))
    else:
        print(f"event loop: {'uvloop' if args.uvloop else 'asyncio'}")
        (uvloop.run if args.uvloop else asyncio.run)(main(args.count, args.rounds))
