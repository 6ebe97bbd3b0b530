"""What tracing costs: REST throughput and CPU per call of a mesh with tracing on against one with it off.

Both meshes run at once, so their idle work (health checks, the sink's share) weighs on both alike. They are
started afresh for each of a few sessions: two processes running the same code can differ by up to +-20 us per call
for as long as they live (measured on a bare server), which flipping the order within a pair cannot cancel, so the
pairs and rounds are spread over several pairs of processes. The REST edge path with a token (edge -> tools) is measured two ways:
- in turn (the headline): short pairs of runs, one mesh at a time, the order flipped each pair (off/on, on/off,
  ...), so a slow spell falls on both halves of a pair and drift cancels; with the CPU each process spent per call
  (Envoy, every service, and this process, which hosts the OTLP sink), to show where the cost lies.
- side by side: both meshes loaded at the same moment for a few seconds, each saturated by its own h2load; the
  mesh whose calls cost more CPU completes fewer of them. A second view of the same cost.
Each pair or round gives its own cost; the report gives every one, their median and their range. On a busy shared
machine they spread widely (an A/A run, tracing off on both meshes, spread by +-20 %): read the median.

`make bench` measures this inside bench.unary; `python -m bench.tracing_cost` measures only this (two meshes, the
side-by-side rounds and the pairs), e.g. `--sample 0` for the cost of tracing when no call is recorded.
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench import MESH_ENV
from services.launcher.envoy_config import Ports
from services.launcher.processes import LocalMesh

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of one process, all its threads, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _drain(connection: socket.socket) -> None:
    """Answers every HTTP/1.1 request on one connection with 200 and an empty body, reading each body unparsed
    (Content-Length or chunked), so the sink costs the machine next to nothing."""
    buffer = b""
    with connection:
        while True:
            while b"\r\n\r\n" not in buffer:
                data = connection.recv(65536)
                if not data:
                    return
                buffer += data
            head, _, buffer = buffer.partition(b"\r\n\r\n")
            lowered = head.lower()
            if b"transfer-encoding: chunked" in lowered:
                while True:
                    while b"\r\n" not in buffer:
                        data = connection.recv(65536)
                        if not data:
                            return
                        buffer += data
                    line, _, buffer = buffer.partition(b"\r\n")
                    size = int(line.split(b";")[0].strip() or b"0", 16)
                    while len(buffer) < size + 2:
                        data = connection.recv(65536)
                        if not data:
                            return
                        buffer += data
                    buffer = buffer[size + 2:]
                    if size == 0:
                        break
            else:
                start = lowered.find(b"content-length:")
                length = int(lowered[start + 15:].split(b"\r\n", 1)[0]) if start >= 0 else 0
                while len(buffer) < length:
                    data = connection.recv(65536)
                    if not data:
                        return
                    buffer += data
                buffer = buffer[length:]
            connection.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n")


@contextmanager
def otlp_sink() -> Iterator[str]:
    """An OTLP/HTTP collector that drops what it is sent: the cost measured is the mesh's, not a backend's."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stopping = threading.Event()

    def accept() -> None:
        while not stopping.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            connection.settimeout(None)
            threading.Thread(target=_drain, args=(connection,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stopping.set()
        thread.join(2)
        listener.close()


@dataclass(frozen=True)
class Half:
    """One timed run on one mesh: calls per second and CPU microseconds per call by process."""

    per_second: float
    cpu_us: Mapping[str, float]

    @property
    def cpu_total(self) -> float:
        return sum(self.cpu_us.values())


def timed(mesh: LocalMesh, count: int, run: Callable[[], float]) -> Half:
    """Runs `run` (it returns the achieved rate) and charges the CPU each process spent to the calls made."""
    pids = {name: process.pid for name, process in mesh.processes.items()} | {"sink (bench process)": os.getpid()}
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    rate = run()
    after = {name: cpu_seconds(pid) for name, pid in pids.items()}
    return Half(rate, {name: (after[name] - before[name]) / count * 1e6 for name in pids})


@dataclass(frozen=True)
class Pair:
    off: Half
    on: Half

    @property
    def cost(self) -> float:
        """Share of throughput lost with tracing on."""
        return 1 - self.on.per_second / self.off.per_second


def measure(off: LocalMesh, on: LocalMesh, count: int, pairs: int, run: Callable[[LocalMesh], float]) -> list[Pair]:
    """`pairs` pairs of runs of `count` calls, the order flipped each pair, after one untimed run on each mesh."""
    run(off)
    run(on)
    results = []
    for index in range(pairs):
        halves: dict[str, Half] = {}
        for name in (("off", "on") if index % 2 == 0 else ("on", "off")):
            mesh = off if name == "off" else on
            halves[name] = timed(mesh, count, functools.partial(run, mesh))
        results.append(Pair(halves["off"], halves["on"]))
        time.sleep(0.2)  # let the batch exporters of the last half flush outside the next half's window
    return results


def report(pairs: list[Pair]) -> float:
    """Prints every pair, the median and range of the cost, and CPU per call by process; returns the median cost."""
    costs = sorted(100 * p.cost for p in pairs)
    print("tracing on against off, REST via edge with a token (pairs of runs, order flipped each pair):")
    for number, pair in enumerate(pairs, 1):
        print(f"  pair {number:>2}: off {pair.off.per_second:>6.0f}/s {pair.off.cpu_total:>5.0f} us CPU/call   "
              f"on {pair.on.per_second:>6.0f}/s {pair.on.cpu_total:>5.0f} us CPU/call   cost {100 * pair.cost:>5.1f} %")
    median = statistics.median(costs)
    print(f"  throughput cost: median {median:.1f} %, range {costs[0]:.1f} to {costs[-1]:.1f} % over {len(pairs)} pairs")
    names = list(pairs[0].off.cpu_us)
    print(f"  CPU per call, median over pairs ({'process':<22} {'off us':>7} {'on us':>7} {'extra':>7}):")
    for name in [*names, "all"]:
        def pick(half: Half, name: str = name) -> float:
            return half.cpu_total if name == "all" else half.cpu_us[name]
        off = statistics.median(pick(p.off) for p in pairs)
        on = statistics.median(pick(p.on) for p in pairs)
        print(f"    {name:<30} {off:>7.1f} {on:>7.1f} {on - off:>+7.1f}")
    cpu_off = statistics.median(p.off.cpu_total for p in pairs)
    cpu_on = statistics.median(p.on.cpu_total for p in pairs)
    print(f"  CPU cost: {100 * (cpu_on / cpu_off - 1):.1f} % more CPU per call with tracing on")
    return median / 100


def _rate(done: subprocess.CompletedProcess[str]) -> float:
    """Calls per second over h2load's timed window, once every call it made succeeded with a 2xx."""
    succeeded = re.search(r"(\d+) succeeded, (\d+) failed, (\d+) errored", done.stdout)
    statuses = re.search(r"status codes: \d+ 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", done.stdout)
    rate = re.search(r"finished in [\d.]+m?s, ([\d.]+) req/s", done.stdout)
    if (done.returncode != 0 or not succeeded or not statuses or not rate or succeeded.group(2, 3) != ("0", "0")
            or int(succeeded.group(1)) == 0 or statuses.groups() != ("0", "0", "0")):
        raise RuntimeError(f"h2load did not complete its calls:\n{done.stdout}\n{done.stderr}")
    return float(rate.group(1))


def side_by_side(commands: Mapping[str, list[str]], rounds: int) -> list[tuple[float, float]]:
    """Runs both h2load commands (timed with -D) at the same moment, `rounds` times; (off, on) rates per round."""
    results = []
    for index in range(rounds):
        names = ("off", "on") if index % 2 == 0 else ("on", "off")  # which one starts a hair earlier
        running = {name: subprocess.Popen(commands[name], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                   for name in names}
        rates = {}
        for name, process in running.items():
            out, err = process.communicate(timeout=300)
            rates[name] = _rate(subprocess.CompletedProcess(process.args, process.returncode or 0, out, err))
        results.append((rates["off"], rates["on"]))
    return results


def report_side_by_side(rounds: list[tuple[float, float]]) -> float:
    """Prints every round, the median and the range of the cost; returns the median cost."""
    costs = sorted(100 * (1 - on / off) for off, on in rounds)
    print("tracing on against off side by side, REST via edge with a token (both meshes loaded at once):")
    for number, (off, on) in enumerate(rounds, 1):
        print(f"  round {number:>2}: off {off:>6.0f}/s   on {on:>6.0f}/s   cost {100 * (1 - on / off):>5.1f} %")
    median = statistics.median(costs)
    print(f"  throughput cost: median {median:.1f} %, range {costs[0]:.1f} to {costs[-1]:.1f} % over {len(rounds)} rounds")
    return median / 100


def _rest_rate(tokens: Mapping[int, str], args: argparse.Namespace, mesh: LocalMesh) -> float:
    from bench import unary  # bench.unary imports this module

    return unary.rest_rate(mesh, tokens[id(mesh)], args)


def compare(folder: Path, sink: str, args: argparse.Namespace,
            sample: float | None = None) -> tuple[list[tuple[float, float]], list[Pair]]:
    """args.pairs side-by-side rounds and as many pairs, spread over args.sessions fresh pairs of meshes (off, on);
    `sample` is the traced mesh's MCPMESH_TRACE_SAMPLE (default: its own)."""
    from bench import unary  # bench.unary imports this module

    sessions = args.sessions
    traced_env = MESH_ENV if sample is None else {**MESH_ENV, "MCPMESH_TRACE_SAMPLE": str(sample)}
    together: list[tuple[float, float]] = []
    pairs: list[Pair] = []
    for session in range(sessions):
        share = args.pairs // sessions + (1 if session < args.pairs % sessions else 0)
        if share == 0:
            continue
        mesh = LocalMesh(folder / f"plain-{session}", ports=Ports.free(), extra_env={**MESH_ENV, "MCPMESH_TRACING": "off"})
        traced = LocalMesh(folder / f"traced-{session}", ports=Ports.free(),
                           extra_env={**traced_env, "MCPMESH_OTLP_ENDPOINT": sink})
        try:
            mesh.start()
            traced.start()
            unary.check_answers(mesh)
            unary.check_answers(traced)
            tokens = {id(one): unary.token(one) for one in (mesh, traced)}
            commands = {name: unary.rest_load(one, tokens[id(one)], args) for name, one in (("off", mesh), ("on", traced))}
            together += side_by_side(commands, share)
            pairs += measure(mesh, traced, args.count, share, functools.partial(_rest_rate, tokens, args))
        finally:
            mesh.stop()
            traced.stop()
    return together, pairs


def report_all(together: list[tuple[float, float]], pairs: list[Pair]) -> float:
    """Prints the side-by-side rounds, the pairs and the verdict; returns the cost (median of the pairs)."""
    report_side_by_side(together)
    cost = report(pairs)
    print(f"tracing costs {100 * cost:.1f} % of REST throughput (median of the pairs; target under 10 %): "
          f"{'met' if cost < 0.10 else 'NOT met'}")
    return cost


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options `compare` reads besides --count and --concurrency (bench.unary runs the comparison too)."""
    parser.add_argument("--pairs", type=int, default=10, help="pairs of runs, tracing off and on, and side-by-side rounds")
    parser.add_argument("--seconds", type=int, default=4, help="length of each side-by-side round of the tracing cost")
    parser.add_argument("--sessions", type=int, default=5, help="fresh pairs of meshes the tracing pairs are spread over")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=3000, help="calls per half of a pair")
    parser.add_argument("--concurrency", type=int, default=64, help="calls in flight (saturating)")
    parser.add_argument("--sample", type=float, help="MCPMESH_TRACE_SAMPLE of the traced mesh (default: its own)")
    add_arguments(parser)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, otlp_sink() as sink:
        together, pairs = compare(Path(folder), sink, args, args.sample)
    report_all(together, pairs)


if __name__ == "__main__":
    main()
