"""Unary call latency and throughput: direct to a service, through the mesh, and through the edge and gateway.

The same GetTool call four ways, driven by h2load (a C client, so the client's own cost stays small), measured
in one run on one machine and interleaved round by round, so the ratios hold even on a noisy host:
  direct        gRPC -> tools
  mesh          gRPC -> Envoy mesh listener -> tools
  edge (gRPC)   gRPC -> Envoy edge -> gateway -> Envoy mesh -> tools
  edge (REST)   REST -> Envoy edge (transcoder) -> gateway -> Envoy mesh -> tools
Latency: one call at a time. Throughput: 64 calls in flight (4 connections x 16 streams), which saturates
the two-core machine. Targets: REST edge throughput >= 40 % of direct, REST edge p50 <= 3x direct.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
from mcpmesh.tools.v1 import tool_service_pb2, tool_service_pb2_grpc

from services.launcher.envoy_config import Ports
from services.launcher.processes import LocalMesh


@dataclass(frozen=True)
class Figures:
    name: str
    p50_ms: float
    p99_ms: float
    per_second: float


def _grpc_body(message: bytes) -> bytes:
    """One gRPC frame: no compression, 4-byte big-endian length, the message."""
    return b"\x00" + struct.pack(">I", len(message)) + message


def h2load(url: str, *, count: int, clients: int, streams: int, headers: list[str], body: Path | None) -> tuple[list[float], float]:
    """Runs h2load; returns per-request latencies (ms) from its log file and the achieved request rate."""
    with tempfile.NamedTemporaryFile(suffix=".log") as log:
        command = ["h2load", "-n", str(count), "-c", str(clients), "-m", str(streams), f"--log-file={log.name}"]
        for header in headers:
            command += ["-H", header]
        if body is not None:
            command += ["-d", str(body)]
        done = subprocess.run([*command, url], capture_output=True, text=True, timeout=300, check=True)
        succeeded = re.search(r"(\d+) succeeded", done.stdout)
        if succeeded is None or int(succeeded.group(1)) != count or "2xx" not in done.stdout:
            raise RuntimeError(f"h2load did not complete every call:\n{done.stdout}")
        statuses = re.search(r"status codes: (\d+) 2xx", done.stdout)
        if statuses is None or int(statuses.group(1)) != count:
            raise RuntimeError(f"non-2xx answers:\n{done.stdout}")
        finished = re.search(r"finished in [\d.]+m?s, ([\d.]+) req/s", done.stdout)
        if finished is None:
            raise RuntimeError(f"h2load printed no request rate:\n{done.stdout}")
        rate = float(finished.group(1))
        latencies = [int(line.split()[2]) / 1000 for line in Path(log.name).read_text().splitlines() if line.strip()]
    return latencies, rate


@dataclass(frozen=True)
class Target:
    name: str
    url: str
    headers: list[str]
    body: Path | None


def measure(targets: list[Target], count: int, concurrency: int, rounds: int) -> list[Figures]:
    """Interleaves the targets round by round, so a slow spell of a shared machine hits every path alike."""
    latencies: dict[str, list[float]] = {t.name: [] for t in targets}
    rates: dict[str, list[float]] = {t.name: [] for t in targets}
    for target in targets:  # warm connections and caches
        h2load(target.url, count=max(count // 10, 50), clients=1, streams=1, headers=target.headers, body=target.body)
    for _ in range(rounds):
        for t in targets:
            samples, _ = h2load(t.url, count=count // rounds, clients=1, streams=1, headers=t.headers, body=t.body)
            latencies[t.name] += samples
            _, rate = h2load(t.url, count=2 * count // rounds, clients=4, streams=max(concurrency // 4, 1),
                             headers=t.headers, body=t.body)
            rates[t.name].append(rate)
    figures = []
    for t in targets:
        samples = sorted(latencies[t.name])
        figures.append(Figures(t.name, statistics.median(samples), samples[int(len(samples) * 0.99) - 1],
                               statistics.median(rates[t.name])))
    return figures


def check_answers(mesh: LocalMesh) -> None:
    """h2load sees HTTP statuses only; make sure each path really answers the call before timing it."""
    request = tool_service_pb2.GetToolRequest(name="file_inventory")
    for address, options in [(f"127.0.0.1:{mesh.ports.service('tools')}", []),
                             (f"127.0.0.1:{mesh.ports.mesh}", [("grpc.default_authority", "tools")])]:
        with grpc.insecure_channel(address, options=options) as channel:
            assert tool_service_pb2_grpc.ToolServiceStub(channel).GetTool(request, timeout=10).tool.name == "file_inventory"
    rest = httpx.get(f"{mesh.edge_url}/v1/tools/file_inventory", headers={"Authorization": f"Bearer {mesh.admin_key()}"})
    assert rest.json()["tool"]["name"] == "file_inventory", rest.text


def run(mesh: LocalMesh, count: int, concurrency: int, rounds: int, folder: Path) -> list[Figures]:
    check_answers(mesh)
    body = folder / "get_tool.bin"
    body.write_bytes(_grpc_body(tool_service_pb2.GetToolRequest(name="file_inventory").SerializeToString()))
    grpc_headers = ["content-type: application/grpc", "te: trailers"]
    auth = f"authorization: Bearer {mesh.admin_key()}"
    path = "/mcpmesh.tools.v1.ToolService/GetTool"
    return measure(
        [
            Target("direct gRPC -> tools", f"http://127.0.0.1:{mesh.ports.service('tools')}{path}", grpc_headers, body),
            Target("gRPC via Envoy mesh -> tools", f"http://127.0.0.1:{mesh.ports.mesh}{path}",
                   [*grpc_headers, ":authority: tools"], body),
            Target("gRPC via edge -> gateway -> mesh -> tools", f"{mesh.edge_url}{path}", [*grpc_headers, auth], body),
            Target("REST via edge -> gateway -> mesh -> tools", f"{mesh.edge_url}/v1/tools/file_inventory", [auth], None),
        ],
        count,
        concurrency,
        rounds,
    )


def report(figures: list[Figures]) -> bool:
    base = figures[0]
    print(f"{'path':<44} {'p50 ms':>8} {'p99 ms':>8} {'calls/s':>9} {'p50 x':>7} {'rate %':>7}")
    for f in figures:
        print(f"{f.name:<44} {f.p50_ms:>8.2f} {f.p99_ms:>8.2f} {f.per_second:>9.0f} "
              f"{f.p50_ms / base.p50_ms:>6.2f}x {100 * f.per_second / base.per_second:>6.0f}%")
    edge = figures[-1]
    ok = edge.per_second >= 0.4 * base.per_second and edge.p50_ms <= 3 * base.p50_ms
    print(f"target (edge rate >= 40 % of direct, edge p50 <= 3x direct): {'met' if ok else 'NOT met'}")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=3000, help="sequential calls per path (twice as many for throughput)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds over the four paths")
    parser.add_argument("--concurrency", type=int, default=64, help="calls in flight for the throughput figure (saturating)")
    args = parser.parse_args()
    if shutil.which("h2load") is None:
        raise SystemExit("h2load not found: apt-get install nghttp2-client (make bench does)")
    with tempfile.TemporaryDirectory() as folder:
        # A high rate limit: the benchmark measures the path, not the limiter.
        mesh = LocalMesh(Path(folder), ports=Ports.free(), extra_env={"MCPMESH_RATE_LIMIT": "1000000", "MCPMESH_RATE_BURST": "1000000",
                                                                      "MCPMESH_LOG_LEVEL": "WARNING"})
        try:
            mesh.start()
            figures = run(mesh, args.count, args.concurrency, args.rounds, Path(folder))
        finally:
            mesh.stop()
    report(figures)


if __name__ == "__main__":
    main()
