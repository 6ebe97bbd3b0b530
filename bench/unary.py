"""Unary call latency and throughput: direct to a service, through the mesh, and through the edge.

The same GetTool call several ways, driven by h2load (a C client, so the client's own cost stays small), measured
in one run on one machine and interleaved round by round, so the ratios hold even on a noisy host:
  direct             gRPC -> tools (the service verifies the token)
  mesh               gRPC -> Envoy mesh listener -> tools (no edge filters, no edge authentication)
  edge, no auth      gRPC -> a second Envoy with the same edge config minus its authentication filters (jwt_authn,
                     the key cache, ext_authz) -> the same tools: the edge with authentication off
  edge, token        gRPC or REST (transcoder) -> Envoy edge (jwt_authn) -> tools: the CLI's and dashboard's path
  edge, key          gRPC or REST -> Envoy edge (its key cache puts the key's token in place of the key, exchanged
                     with the gateway once per worker every 2 s) -> tools: curl's and grpcurl's path
Latency: one call at a time. Throughput: 64 calls in flight (4 connections x 16 streams), which saturates
the two-core machine. Targets: REST edge (token, and key) throughput >= 70 % of direct, p50 <= 2x direct; authentication
at the edge (the gRPC edge with a token against the same edge with its authentication filters removed) costs under
10 % of throughput: measured apart, in pairs of back-to-back throughput runs of the two edges (order flipped each
pair), as the median of the pairs' costs, since one short run of a path swings by tens of percent on this machine.
Tracing: the paths run on a mesh with tracing off; then the REST edge path (token) is timed in pairs of runs on a
mesh with tracing off against one with it on (Envoy and every service export OTLP/HTTP to a local sink that discards
it), the order flipped each pair, over a few sessions of freshly started meshes (bench/tracing_cost.py). Target: tracing costs under 10 % of REST throughput.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import struct
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import yaml
from mcpmesh.tools.v1 import tool_service_pb2, tool_service_pb2_grpc

from bench import MESH_ENV, tracing_cost
from services.launcher.envoy_config import Ports
from services.launcher.processes import LocalMesh, envoy_binary

AUTH_FILTERS = ("envoy.filters.http.jwt_authn", "mcpmesh.key_cache", "envoy.filters.http.ext_authz")


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


def token(mesh: LocalMesh) -> str:
    """A token the gateway issued for the admin key: what a call that skips the edge must carry."""
    response = httpx.post(f"{mesh.edge_url}/v1/tokens", json={}, headers={"Authorization": f"Bearer {mesh.admin_key()}"})
    response.raise_for_status()
    return str(response.json()["token"])


def check_answers(mesh: LocalMesh) -> None:
    """h2load sees HTTP statuses only; make sure each path really answers the call before timing it."""
    request = tool_service_pb2.GetToolRequest(name="file_inventory")
    metadata: tuple[tuple[str, str | bytes], ...] = (("authorization", f"Bearer {token(mesh)}"),)
    for address, options in [(f"127.0.0.1:{mesh.ports.service('tools')}", []),
                             (f"127.0.0.1:{mesh.ports.mesh}", [("grpc.default_authority", "tools")])]:
        with grpc.insecure_channel(address, options=options) as channel:
            found = tool_service_pb2_grpc.ToolServiceStub(channel).GetTool(request, timeout=10, metadata=metadata)
            assert found.tool.name == "file_inventory"
    rest = httpx.get(f"{mesh.edge_url}/v1/tools/file_inventory", headers={"Authorization": f"Bearer {mesh.admin_key()}"})
    assert rest.json()["tool"]["name"] == "file_inventory", rest.text


@contextmanager
def edge_without_auth(mesh: LocalMesh, folder: Path) -> Iterator[str]:
    """A second Envoy with `mesh`'s edge listener and clusters but none of the authentication filters, in front of
    the same services: the edge with authentication off (the services still verify the token). Yields its URL."""
    config = yaml.safe_load((mesh.data_dir / "envoy.yaml").read_text())
    ports = Ports.free()
    resources = config["static_resources"]
    resources["listeners"] = [listener for listener in resources["listeners"] if listener["name"] == "edge"]
    edge = resources["listeners"][0]
    edge["address"]["socket_address"]["port_value"] = ports.edge
    manager = edge["filter_chains"][0]["filters"][0]["typed_config"]
    manager["http_filters"] = [f for f in manager["http_filters"] if f["name"] not in AUTH_FILTERS]
    config["admin"]["address"]["socket_address"]["port_value"] = ports.admin
    path = folder / "edge-without-auth.yaml"
    path.write_text(yaml.safe_dump(config))
    process = subprocess.Popen([envoy_binary(), "-c", str(path), "--disable-hot-restart", "--log-level", "error"])
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{ports.admin}/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("the edge without authentication did not start")
            time.sleep(0.2)
        yield f"http://127.0.0.1:{ports.edge}"
    finally:
        process.terminate()
        process.wait(timeout=10)


DIRECT = "direct gRPC -> tools"
EDGE_TOKEN_GRPC = "gRPC via edge, token -> tools"
EDGE_KEY_REST = "REST via edge, key (key cache) -> tools"
EDGE_TOKEN_REST = "REST via edge, token -> tools"
EDGE_WITHOUT_AUTH = "gRPC via edge without auth, token -> tools"


def auth_pairs(with_auth: Target, without: Target, count: int, concurrency: int, pairs: int) -> list[float]:
    """Throughput cost of the edge's authentication, one figure per pair of back-to-back runs (order flipped)."""
    costs = []
    for n in range(pairs):
        rates = {}
        for t in (with_auth, without) if n % 2 == 0 else (without, with_auth):
            _, rates[t.name] = h2load(t.url, count=count, clients=4, streams=max(concurrency // 4, 1),
                                      headers=t.headers, body=t.body)
        costs.append(1 - rates[with_auth.name] / rates[without.name])
    return costs


def run(mesh: LocalMesh, count: int, concurrency: int, rounds: int, pairs: int,
        folder: Path) -> tuple[list[Figures], list[float]]:
    check_answers(mesh)
    body = folder / "get_tool.bin"
    body.write_bytes(_grpc_body(tool_service_pb2.GetToolRequest(name="file_inventory").SerializeToString()))
    grpc_headers = ["content-type: application/grpc", "te: trailers"]
    auth = f"authorization: Bearer {mesh.admin_key()}"
    # A service takes the gateway's token, not the key; the edge sends a token straight to the service.
    bearer = f"authorization: Bearer {token(mesh)}"
    inside = [*grpc_headers, bearer]
    path = "/mcpmesh.tools.v1.ToolService/GetTool"
    with edge_without_auth(mesh, folder) as open_edge:
        edge_token = Target(EDGE_TOKEN_GRPC, f"{mesh.edge_url}{path}", inside, body)
        edge_open = Target(EDGE_WITHOUT_AUTH, f"{open_edge}{path}", inside, body)
        figures = measure(
            [
                Target(DIRECT, f"http://127.0.0.1:{mesh.ports.service('tools')}{path}", inside, body),
                Target("gRPC via Envoy mesh -> tools", f"http://127.0.0.1:{mesh.ports.mesh}{path}",
                       [*inside, ":authority: tools"], body),
                edge_token,
                Target("gRPC via edge, key (key cache) -> tools", f"{mesh.edge_url}{path}", [*grpc_headers, auth], body),
                Target(EDGE_KEY_REST, f"{mesh.edge_url}/v1/tools/file_inventory", [auth], None),
                Target(EDGE_TOKEN_REST, f"{mesh.edge_url}/v1/tools/file_inventory", [bearer], None),
                edge_open,
            ],
            count,
            concurrency,
            rounds,
        )
        return figures, auth_pairs(edge_token, edge_open, count, concurrency, pairs)


def report(figures: list[Figures], auth_costs: list[float]) -> bool:
    by_name = {f.name: f for f in figures}
    base = by_name[DIRECT]
    print(f"{'path':<44} {'p50 ms':>8} {'p99 ms':>8} {'calls/s':>9} {'p50 x':>7} {'rate %':>7}")
    for f in figures:
        print(f"{f.name:<44} {f.p50_ms:>8.2f} {f.p99_ms:>8.2f} {f.per_second:>9.0f} "
              f"{f.p50_ms / base.p50_ms:>6.2f}x {100 * f.per_second / base.per_second:>6.0f}%")
    edge = by_name[EDGE_TOKEN_REST]
    ok = edge.per_second >= 0.7 * base.per_second and edge.p50_ms <= 2 * base.p50_ms
    print(f"target (REST edge with a token: rate >= 70 % of direct, p50 <= 2x direct): {'met' if ok else 'NOT met'}")
    keyed = by_name[EDGE_KEY_REST]
    key_ok = keyed.per_second >= 0.7 * base.per_second and keyed.p50_ms <= 2 * base.p50_ms
    print(f"target (REST edge with a raw key: rate >= 70 % of direct, p50 <= 2x direct): "
          f"{'met' if key_ok else 'NOT met'}")
    open_edge, edge_grpc = by_name[EDGE_WITHOUT_AUTH], by_name[EDGE_TOKEN_GRPC]
    auth_cost = statistics.median(auth_costs)
    print(f"edge authentication (gRPC edge with a token vs the same edge without its authentication filters): "
          f"pairs {', '.join(f'{100 * c:.1f}' for c in auth_costs)} %")
    print(f"  costs {100 * auth_cost:.1f} % of throughput (median of {len(auth_costs)} pairs), "
          f"p50 {edge_grpc.p50_ms - open_edge.p50_ms:+.2f} ms (target under 10 %): "
          f"{'met' if auth_cost < 0.10 else 'NOT met'}")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=3000, help="sequential calls per path (twice as many for throughput)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds over the four paths")
    parser.add_argument("--auth-pairs", type=int, default=6, help="pairs of runs, the edge with and without authentication")
    parser.add_argument("--concurrency", type=int, default=64, help="calls in flight for the throughput figure (saturating)")
    tracing_cost.add_arguments(parser)
    args = parser.parse_args()
    if shutil.which("h2load") is None:
        raise SystemExit("h2load not found: apt-get install nghttp2-client (make bench does)")
    with tempfile.TemporaryDirectory() as folder, tracing_cost.otlp_sink() as sink:
        mesh = LocalMesh(Path(folder) / "paths", ports=Ports.free(),
                         extra_env={**MESH_ENV, "MCPMESH_TRACING": "off"})
        try:
            mesh.start()
            figures, auth_costs = run(mesh, args.count, args.concurrency, args.rounds, args.auth_pairs, Path(folder))
        finally:
            mesh.stop()
        together, pairs = tracing_cost.compare(Path(folder), sink, args)
    report(figures, auth_costs)
    tracing_cost.report_all(together, pairs)


def rest_load(mesh: LocalMesh, bearer: str, args: argparse.Namespace) -> list[str]:
    """h2load saturating the REST edge path with a token for a few seconds (half the connections of the
    throughput figure, since two meshes share the machine)."""
    return ["h2load", "-D", str(args.seconds), "--warm-up-time", "1", "-c", "2", "-m", str(max(args.concurrency // 4, 1)),
            "-H", f"authorization: Bearer {bearer}", f"{mesh.edge_url}/v1/tools/file_inventory"]


def rest_rate(mesh: LocalMesh, bearer: str, args: argparse.Namespace) -> float:
    """REST through the edge with a token, `count` calls at the throughput concurrency: the achieved rate."""
    _, rate = h2load(f"{mesh.edge_url}/v1/tools/file_inventory", count=args.count, clients=4,
                     streams=max(args.concurrency // 4, 1), headers=[f"authorization: Bearer {bearer}"], body=None)
    return rate


if __name__ == "__main__":
    main()
