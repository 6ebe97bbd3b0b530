"""Tool execution cost, path by path, and the system as an MCP gateway against a direct MCP call.

1. A read-only built-in tool (read_file, ten lines of a 2,000-line file), measured sequentially (p50) four ways:
     in-process     FileTools.read_file called in this process (no RPC at all)
     direct gRPC    ExecuteTool straight to the tools service's port
     edge REST      POST /v1/tools/read_file/execute -> Envoy edge -> gateway -> Envoy mesh -> tools
   each cold (a new line range every call, so the result cache misses) and cached (the same call again), on a
   mesh with the in-process result cache and again on a mesh whose cache is a real redis-server. The paths take
   turns over several rounds, so load that drifts on a shared machine hits them alike.
   Target: a cached call through the edge within 3x of the cached direct gRPC call (p50).
2. MCP tools/call of time.get_current_time on mcp-server-time (stdio): through /mcp on the edge with the official
   client, against the same client calling the stdio server directly; sequential p50, and calls per second with
   16 concurrent callers on one session (the two paths take turns, round by round). The mesh runs with a result cache lifetime of 0, so every call really
   reaches mcp-server-time. Targets: p50 within 4x of direct, throughput at least 40 % of direct.
Everything is bounded: a few hundred calls per figure, loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import httpx
import httpx2
from google.protobuf import struct_pb2
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcpmesh.tools.v1 import tool_service_pb2, tool_service_pb2_grpc

from bench import MESH_ENV
from services.launcher.envoy_config import Ports
from services.launcher.ports import free_port, wait_for_port
from services.launcher.processes import LocalMesh
from services.tools.file_tools import FileTools

ROOT = Path(__file__).resolve().parent.parent
TIME_SERVER = ROOT / ".tools" / "mcp-server-time" / "bin" / "mcp-server-time"
ENV = {**MESH_ENV, "MCPMESH_TRACING": "off"}


def p50(samples: list[float]) -> float:
    return statistics.median(samples)


def timed(call: Callable[[], object], count: int) -> list[float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


@contextmanager
def redis_server() -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server not found: apt-get install redis-server (.ci/run does)")
    port = free_port()
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if not wait_for_port(port, 10, interval=0.05):
            raise SystemExit(f"redis-server did not listen on port {port} within 10 s")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)


def _bearer(mesh: LocalMesh) -> str:
    """The admin key exchanged for a gateway token, as the CLI and the dashboard do: such calls go from the edge
    straight to the service (a raw key would take the gateway's hop)."""
    response = httpx.post(f"{mesh.edge_url}/v1/tokens", json={}, headers={"Authorization": f"Bearer {mesh.admin_key()}"})
    response.raise_for_status()
    return f"Bearer {response.json()['token']}"


def _token(mesh: LocalMesh) -> tuple[tuple[str, str | bytes], ...]:
    """The same token as gRPC metadata: what a call that skips the edge carries."""
    return (("authorization", _bearer(mesh)),)


def interleaved(paths: dict[str, Callable[[], object]], count: int, rounds: int) -> dict[str, float]:
    """p50 per path, the paths taking turns round by round, so load that drifts on a shared machine hits all alike."""
    samples: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(rounds):
        for name, call in paths.items():
            samples[name] += timed(call, max(count // rounds, 1))
    return {name: p50(values) for name, values in samples.items()}


def builtin_figures(mesh: LocalMesh, label: str, folder: Path, count: int, rounds: int) -> dict[str, float]:
    target = folder / "big.txt"
    tools = FileTools([folder], 1000)
    starts = iter(range(10**9))

    def arguments(start: int) -> dict[str, Any]:
        return {"path": str(target), "start_line": start, "end_line": start + 9}

    metadata = _token(mesh)
    with grpc.insecure_channel(f"127.0.0.1:{mesh.ports.service('tools')}") as channel, httpx.Client(
        base_url=mesh.edge_url, headers={"Authorization": _bearer(mesh)}
    ) as rest:
        stub = tool_service_pb2_grpc.ToolServiceStub(channel)

        def direct(start: int) -> None:
            request = tool_service_pb2.ExecuteToolRequest(name="read_file", arguments=struct_pb2.Struct())
            request.arguments.update(arguments(start))
            stub.ExecuteTool(request, timeout=30, metadata=metadata)

        def edge(start: int) -> None:
            rest.post("/v1/tools/read_file/execute", json={"arguments": arguments(start)}).raise_for_status()

        direct(5)
        edge(7)
        # Cold calls take a line range never asked before (a cache miss); cached ones repeat one range.
        return {
            f"{name} ({label})": value
            for name, value in interleaved({
                "in-process": lambda: tools.read_file(arguments(1)),
                "direct gRPC cold": lambda: direct(next(starts) % 1900 + 1),
                "direct gRPC cached": lambda: direct(5),
                "edge REST cold": lambda: edge(next(starts) % 1900 + 1),
                "edge REST cached": lambda: edge(7),
            }, count, rounds).items()
        }


async def mcp_figures(mesh: LocalMesh, count: int, callers: int, rounds: int) -> dict[str, float]:
    arguments = {"timezone": "Europe/Paris"}
    latencies: dict[str, list[float]] = {"direct": [], "edge": []}
    rates: dict[str, list[float]] = {"direct": [], "edge": []}

    async def sequential(client: Client, name: str, calls: int) -> list[float]:
        samples = []
        for _ in range(calls):
            started = time.perf_counter()
            result = await client.call_tool(name, arguments)
            samples.append((time.perf_counter() - started) * 1000)
            assert not result.is_error, result
        return samples

    async def concurrent(client: Client, name: str, calls: int) -> float:
        per_caller = max(calls // callers, 20)  # a few hundred calls per figure: a handful is all noise

        async def caller() -> None:
            for _ in range(per_caller):
                await client.call_tool(name, arguments)

        started = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(callers)))
        return per_caller * callers / (time.perf_counter() - started)

    http = httpx2.AsyncClient(headers={"Authorization": _bearer(mesh)}, timeout=60)
    async with Client(StdioServerParameters(command=str(TIME_SERVER))) as direct, Client(
        streamable_http_client(f"{mesh.edge_url}/mcp", http_client=http)
    ) as edge:
        paths = {"direct": (direct, "get_current_time"), "edge": (edge, "time.get_current_time")}
        for client, name in paths.values():  # warm up: sessions listed, the edge client's 16 connections open
            await concurrent(client, name, callers)
        for _ in range(rounds):
            for path, (client, name) in paths.items():
                latencies[path] += await sequential(client, name, max(count // rounds, 1))
                rates[path].append(await concurrent(client, name, max(count // rounds, callers)))
    # The two paths' rates of one round were measured back to back: their ratio is the least drift-prone figure.
    paired = sorted(edge / direct for edge, direct in zip(rates["edge"], rates["direct"], strict=True))
    return {
        "direct p50": p50(latencies["direct"]), "direct rate": p50(rates["direct"]),
        "edge p50": p50(latencies["edge"]), "edge rate": p50(rates["edge"]),
        "round ratio min": paired[0], "round ratio p50": p50(paired), "round ratio max": paired[-1],
    }


@contextmanager
def running(data_dir: Path, workspace: Path, env: dict[str, str]) -> Iterator[LocalMesh]:
    mesh = LocalMesh(data_dir, ports=Ports.free(), workspace_roots=[workspace], extra_env=env)
    try:
        mesh.start()
        yield mesh
    finally:
        mesh.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=300, help="sequential calls per figure")
    parser.add_argument("--callers", type=int, default=16, help="concurrent MCP callers")
    parser.add_argument("--rounds", type=int, default=5, help="rounds in which the paths take turns")
    parser.add_argument("--only", choices=("builtin", "mcp"), default="", help="measure one part only")
    args = parser.parse_args()
    if not TIME_SERVER.exists():
        raise SystemExit(f"{TIME_SERVER} not found: .ci/run installs mcp-server-time under .tools/")
    with tempfile.TemporaryDirectory() as temp, redis_server() as redis_url:
        folder = Path(temp) / "workspace"
        folder.mkdir()
        (folder / "big.txt").write_text("".join(f"line {n} of a file the bench reads ten lines at a time\n" for n in range(2000)))
        base = {**ENV, "MCPMESH_MCP_STDIO_COMMANDS": str(TIME_SERVER)}
        builtin: dict[str, float] = {}
        # One mesh at a time: two cores are shared by Envoy, four services and the client.
        for label, extra in (("in-process cache", {}), ("Redis cache", {"MCPMESH_TOOL_CACHE_URL": redis_url})):
            if args.only == "mcp":
                break
            with running(Path(temp) / label.split()[0], folder, {**base, **extra}) as mesh:
                builtin.update(builtin_figures(mesh, label, folder, args.count, args.rounds))
        mcp: dict[str, float] = {}
        if args.only != "builtin":
            with running(Path(temp) / "mcp", folder, {**base, "MCPMESH_TOOL_CACHE_SECONDS": "0"}) as mesh:
                admin = {"Authorization": f"Bearer {mesh.admin_key()}"}
                registered = httpx.post(f"{mesh.edge_url}/v1/mcp-servers", headers=admin, timeout=60,
                                        json={"name": "time", "transport": "MCP_TRANSPORT_STDIO", "command": [str(TIME_SERVER)]})
                if registered.status_code != 200:
                    raise SystemExit(f"registering mcp-server-time failed: HTTP {registered.status_code} {registered.text}")
                mcp = asyncio.run(mcp_figures(mesh, args.count, args.callers, args.rounds))
    report(builtin, mcp)


def report(builtin: dict[str, float], mcp: dict[str, float]) -> None:
    if builtin:
        report_builtin(builtin)
    if mcp:
        report_mcp(mcp)


def report_builtin(builtin: dict[str, float]) -> None:
    print("\nRead-only built-in tool (read_file, 10 lines), sequential p50 in ms:")
    for name, value in builtin.items():
        print(f"  {name:36} {value:8.2f}")
    for label in ("in-process cache", "Redis cache"):
        edge, direct = builtin[f"edge REST cached ({label})"], builtin[f"direct gRPC cached ({label})"]
        ratio = edge / direct
        print(f"  cached edge / cached direct gRPC ({label}): {ratio:.2f}x (target <= 3x) {'OK' if ratio <= 3 else 'MISSED'}")
        print(f"  cached edge / in-process function ({label}): {edge / builtin[f'in-process ({label})']:.1f}x")


def report_mcp(mcp: dict[str, float]) -> None:
    print("\nMCP tools/call time.get_current_time (mcp-server-time over stdio):")
    print(f"  direct stdio   p50 {mcp['direct p50']:7.2f} ms   {mcp['direct rate']:7.1f} calls/s with 16 callers")
    print(f"  edge /mcp      p50 {mcp['edge p50']:7.2f} ms   {mcp['edge rate']:7.1f} calls/s with 16 callers")
    latency, rate = mcp["edge p50"] / mcp["direct p50"], mcp["edge rate"] / mcp["direct rate"]
    print(f"  p50 ratio {latency:.2f}x (target <= 4x) {'OK' if latency <= 4 else 'MISSED'};"
          f" throughput {rate:.0%} of direct (target >= 40 %) {'OK' if rate >= 0.4 else 'MISSED'}")
    print(f"  throughput of the edge against direct, round by round: median {mcp['round ratio p50']:.0%}"
          f" (from {mcp['round ratio min']:.0%} to {mcp['round ratio max']:.0%})")


if __name__ == "__main__":
    main()
