"""The workflows service against LangGraph's own local Agent Server on the same trivial graph, in one run.

The peer: `langgraph dev` (langgraph-cli[inmem], in its own virtual environment .tools/langgraph-peers, made by
`make bench-peers`) on a free loopback port with --no-browser and analytics off, driven by the official
langgraph-sdk client: one thread per run, runs.wait. Ours: CreateWorkflow + WatchWorkflow to the end over gRPC
(bench/workflows.py), the service in a process of its own like the peer; then two such instances sharing one state
folder, the callers taking them in turn (the same two cores). Ours is timed until no instance holds a run (LangGraph's
last checkpoint writes go on after a workflow ends). Each server runs alone while it is measured. Each: 200 runs sequentially (latency per run, p50) and with 16 callers (runs/s).
Targets: with 16 callers at least 2x the peer's runs/s; sequential p50 at most 1/20 of the peer's.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import httpx
from langgraph_sdk import get_client
from mcpmesh.workflows.v1 import workflow_service_pb2_grpc

from bench.workflows import Settle, percentile, service_one, timed
from services.launcher.ports import free_port

PEER_VENV = Path(__file__).resolve().parent.parent / ".tools" / "langgraph-peers"
GRAPH = '''
import operator
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph


class State(TypedDict, total=False):
    a: int
    b: int
    result: dict
    completed: Annotated[list, operator.add]


async def a(state: State) -> dict[str, Any]:
    return {"a": 1}


async def b(state: State) -> dict[str, Any]:
    return {"b": 2}


async def merge(state: State) -> dict[str, Any]:
    return {"result": {"sum": state["a"] + state["b"]}}


builder = StateGraph(State)
builder.add_node("a", a)
builder.add_node("b", b)
builder.add_node("merge", merge)
builder.add_edge(START, "a")
builder.add_edge(START, "b")
builder.add_edge(["a", "b"], "merge")
builder.add_edge("merge", END)
graph = builder.compile()
'''


def start_peer(folder: Path, port: int) -> subprocess.Popen[bytes]:
    (folder / "graph.py").write_text(GRAPH)
    (folder / "langgraph.json").write_text('{"dependencies": ["."], "graphs": {"trivial": "./graph.py:graph"}}')
    env = {**os.environ, "LANGGRAPH_CLI_NO_ANALYTICS": "1", "LANGSMITH_TRACING": "false"}
    log = open(folder / "peer.log", "wb")  # noqa: SIM115 - the process keeps writing to it until it is stopped
    process = subprocess.Popen(
        [str(PEER_VENV / "bin" / "langgraph"), "dev", "--port", str(port), "--host", "127.0.0.1", "--no-browser",
         "--no-reload", "--config", "langgraph.json"],
        cwd=folder, stdout=log, stderr=subprocess.STDOUT, env=env,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"langgraph dev exited: {(folder / 'peer.log').read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ok", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    process.terminate()
    raise SystemExit("langgraph dev did not answer /ok within 120 s")


async def measure(run: Callable[[], Awaitable[None]], count: int, callers: int,
                  settle: Settle | None = None) -> tuple[float, list[float]]:
    """(seconds for `count` runs with `callers` at a time and then for `settle`, latency of each run)."""
    latencies: list[float] = []

    async def run_timed(_: int) -> None:
        started = time.perf_counter()
        await run()
        latencies.append(time.perf_counter() - started)

    return await timed(run_timed, count, callers, settle), latencies


async def measure_ours(folder: Path, instances: int, count: int) -> dict[int, tuple[float, list[float]]]:
    """The workflows service as `instances` processes sharing the state in `folder`: runs with 1 and 16 callers,
    each workflow created and watched on the next instance in turn."""
    folder.mkdir()
    servers: list[subprocess.Popen[bytes]] = []
    try:
        ports = []
        for n in range(instances):
            port_file = folder / f"port-{n}"
            servers.append(subprocess.Popen(
                [sys.executable, "-m", "bench.workflows", "--serve", str(folder), "--port-file", str(port_file)],
                cwd=Path(__file__).resolve().parent.parent))
            deadline = time.monotonic() + 60
            while not port_file.exists() or not port_file.read_text():
                if servers[-1].poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the workflows service for the benchmark did not start")
                await asyncio.sleep(0.1)
            ports.append(port_file.read_text())
        channels = [grpc.aio.insecure_channel(f"127.0.0.1:{port}") for port in ports]
        try:
            stubs = itertools.cycle([workflow_service_pb2_grpc.WorkflowServiceStub(c) for c in channels])

            async def ours() -> None:
                await service_one(next(stubs), None)

            async def settle() -> None:  # every instance done with LangGraph's last checkpoint writes
                counters = [folder / f"port-{n}.active" for n in range(instances)]
                while any(not c.exists() or c.read_text() != "0" for c in counters):
                    await asyncio.sleep(0.001)

            await measure(ours, 5 * instances, 1, settle)  # warm-up
            return {callers: await measure(ours, count, callers, settle) for callers in (1, 16)}
        finally:
            for channel in channels:
                await channel.close()
    finally:
        for server in servers:
            server.terminate()
            server.wait(20)


async def main(count: int) -> None:
    if not (PEER_VENV / "bin" / "langgraph").exists():
        raise SystemExit("run `make bench-peers`: it makes .tools/langgraph-peers with langgraph-cli[inmem]")
    results: dict[tuple[str, int], tuple[float, list[float]]] = {}
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        port = free_port()
        peer = start_peer(root, port)
        try:
            client = get_client(url=f"http://127.0.0.1:{port}")

            async def peer_one() -> None:
                thread = await client.threads.create()
                result: Any = await client.runs.wait(thread["thread_id"], "trivial", input={})
                assert result["result"] == {"sum": 3}, result

            await measure(peer_one, 5, 1)  # warm-up
            for callers in (1, 16):
                results[("peer", callers)] = await measure(peer_one, count, callers)
        finally:
            # Stopped before ours runs: its in-memory server keeps working after its runs (queue polls, state
            # flushes), which would otherwise take CPU from ours on this two-core machine. Ours is not running
            # while the peer is measured either.
            peer.terminate()
            peer.wait(20)
        # Ours as a server process of its own too, so that neither server shares its process with the callers;
        # then as two instances sharing one state folder (the launcher's --instances workflows=2), callers taking
        # them in turn.
        for instances in (1, 2):
            name = "ours" if instances == 1 else f"ours x{instances}"
            for callers, figures in (await measure_ours(root / name.replace(" ", ""), instances, count)).items():
                results[(name, callers)] = figures

    print(f"workflow peers: {count} runs of the trivial three-step graph; peer = langgraph dev (in-memory server) "
          "through langgraph-sdk, ours = workflows service through gRPC")
    print(f"{'server':<6} {'callers':>7} {'runs/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for (name, callers), (seconds, latencies) in sorted(results.items()):
        print(f"{name:<6} {callers:>7} {count / seconds:>8.1f} {1000 * statistics.median(latencies):>8.1f} "
              f"{1000 * percentile(latencies, 0.99):>8.1f}")
    for name in ("ours", "ours x2"):
        throughput = results[("peer", 16)][0] / results[(name, 16)][0]
        sequential = statistics.median(results[(name, 1)][1]) / statistics.median(results[("peer", 1)][1])
        print(f"{name}: 16 callers ours / peer runs/s = {throughput:.1f}x (target >= 2x); "
              f"sequential p50 ours / peer = 1/{1 / sequential:.0f} (target <= 1/20)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200, help="runs per measurement")
    asyncio.run(main(parser.parse_args().count))
