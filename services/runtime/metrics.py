"""Per-RPC counts and latencies plus the scaling gauges, for Prometheus (/metrics) and as CloudWatch EMF log lines."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

REGISTRY = CollectorRegistry()
RPC_REQUESTS = Counter(
    "mcpmesh_rpc_requests", "gRPC calls served, by method and status code", ["service", "method", "code"], registry=REGISTRY
)
RPC_SECONDS = Histogram(
    "mcpmesh_rpc_duration_seconds", "time to serve a gRPC call (streams: until the last message)", ["service", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300), registry=REGISTRY,
)


@dataclass
class Window:
    """Calls since the last EMF line: count, errors and total seconds, per service."""

    calls: int = 0
    errors: int = 0
    seconds: float = 0.0

    def take(self) -> tuple[int, int, float]:
        taken = (self.calls, self.errors, self.seconds)
        self.calls, self.errors, self.seconds = 0, 0, 0.0
        return taken


WINDOW = Window()


def record(service: str, method: str, code: str, seconds: float) -> None:
    RPC_REQUESTS.labels(service, method, code).inc()
    RPC_SECONDS.labels(service, method).observe(seconds)
    WINDOW.calls += 1
    WINDOW.seconds += seconds
    if code not in ("OK", "CANCELLED", "INVALID_ARGUMENT", "NOT_FOUND", "ALREADY_EXISTS", "FAILED_PRECONDITION",
                    "PERMISSION_DENIED", "UNAUTHENTICATED", "OUT_OF_RANGE"):
        WINDOW.errors += 1  # server-side failures only: a caller's bad input is not an error of this service


@dataclass(eq=False)  # registries keep collectors in a dict: hashable by identity
class ScalingGauges(Collector):
    """The service's own gauges (ActiveAgentExecutions, ToolExecutionQueue, ActiveWorkflows ...), read at scrape time
    from the same function that fills the health report, so the two never disagree."""

    service: str
    read: Callable[[], Mapping[str, float]] = field(default=dict)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        for name, value in sorted(self.read().items()):
            gauge = GaugeMetricFamily(name, f"{name} of this {self.service} instance (a scaling metric)", labels=["service"])
            gauge.add_metric([self.service], value)
            yield gauge


def serve_prometheus(host: str, port: int, service: str, read: Callable[[], Mapping[str, float]]) -> Callable[[], None]:
    """Starts the /metrics endpoint on its own port (a thread); returns its stop function."""
    REGISTRY.register(ScalingGauges(service, read))
    server, thread = start_http_server(port, addr=host, registry=REGISTRY)

    def stop() -> None:
        server.shutdown()
        thread.join(2)

    return stop


def emf_line(namespace: str, service: str, instance: str, gauges: Mapping[str, float], window: tuple[int, int, float]) -> str:
    """One CloudWatch embedded-metric-format record: CloudWatch Logs turns it into metrics, no API call needed."""
    calls, errors, seconds = window
    values = {**gauges, "Requests": float(calls), "Errors": float(errors),
              "Latency": round(seconds / calls * 1000, 3) if calls else 0.0}
    units = {"Latency": "Milliseconds"}
    return json.dumps({
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [["Service"]],
                "Metrics": [{"Name": name, "Unit": units.get(name, "Count")} for name in values],
            }],
        },
        "Service": service,
        "Instance": instance,
        **values,
    })


def start_emf(
    namespace: str, interval: float, service: str, instance: str, read: Callable[[], Mapping[str, float]],
    out: IO[str] | None = None,
) -> Callable[[], None]:
    """Writes an EMF line every `interval` seconds to standard output (the container's log stream); returns stop."""

    async def loop() -> None:
        while True:
            await asyncio.sleep(interval)
            write()

    def write() -> None:
        stream = out or sys.stdout
        stream.write(emf_line(namespace, service, instance, dict(read()), WINDOW.take()) + "\n")
        stream.flush()

    task = asyncio.get_running_loop().create_task(loop())

    def stop() -> None:
        task.cancel()
        write()  # the last window is not lost at shutdown

    return stop
