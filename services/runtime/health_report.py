"""The detailed health report every server gives: status, version, uptime and named checks."""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf import duration_pb2, timestamp_pb2
from grpc_health.v1.health_pb2 import HealthCheckResponse
from mcpmesh.health.v1 import health_pb2, health_pb2_grpc

log = logging.getLogger("mcpmesh.health")

SERVING = health_pb2.HEALTH_STATUS_SERVING
DEGRADED = health_pb2.HEALTH_STATUS_DEGRADED
NOT_SERVING = health_pb2.HEALTH_STATUS_NOT_SERVING

CheckResult = tuple[health_pb2.HealthStatus.ValueType, str]
Check = Callable[[], Awaitable[CheckResult]]


def disk_check(folder: Path) -> Check:
    async def check() -> CheckResult:
        usage = shutil.disk_usage(folder)
        free = usage.free / usage.total
        status = SERVING if free > 0.05 else DEGRADED if free > 0.01 else NOT_SERVING
        return status, f"{usage.free // 2**20} MiB free ({free:.0%}) in {folder}"

    return check


def database_check(ping: Callable[[], Awaitable[None]], name: str) -> Check:
    """`ping` is the store port's own: a check of the state store, whatever adapter backs it."""

    async def check() -> CheckResult:
        await ping()
        return SERVING, f"{name} answers"

    return check


def memory_check(limit_bytes: int = 4 * 2**30) -> Check:
    async def check() -> CheckResult:
        rss = resident_bytes()
        status = SERVING if rss < limit_bytes * 0.75 else DEGRADED if rss < limit_bytes else NOT_SERVING
        return status, f"{rss // 2**20} MiB resident of {limit_bytes // 2**20} MiB allowed"

    return check


def resident_bytes() -> int:
    """Resident set size from /proc; 0 where /proc is missing."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


@dataclass
class HealthReporter(health_pb2_grpc.HealthReportServiceServicer):
    """Runs the checks on each call; a check that raises or hangs counts as NOT_SERVING."""

    service: str
    version: str
    checks: dict[str, Check]
    metrics: Callable[[], Mapping[str, float]] = field(default=dict)
    instance: str = ""
    started: float = field(default_factory=time.monotonic)
    check_timeout: float = 2.0

    async def report(self) -> health_pb2.HealthReport:
        results = await asyncio.gather(*(self._run(name, check) for name, check in self.checks.items()))
        uptime = duration_pb2.Duration()
        uptime.FromNanoseconds(int((time.monotonic() - self.started) * 1e9))
        now = timestamp_pb2.Timestamp()
        now.GetCurrentTime()
        worst = max((c.status for c in results), default=SERVING)
        return health_pb2.HealthReport(
            status=worst,
            service=self.service,
            version=self.version,
            uptime=uptime,
            checks=results,
            instance=self.instance,
            report_time=now,
            metrics=dict(self.metrics()),
        )

    async def _run(self, name: str, check: Check) -> health_pb2.HealthCheck:
        started = time.perf_counter()
        try:
            status, detail = await asyncio.wait_for(check(), self.check_timeout)
        except Exception as exc:  # a failing check is a report, not a crash
            status, detail = NOT_SERVING, f"{type(exc).__name__}: {exc}"
        latency = duration_pb2.Duration()
        latency.FromNanoseconds(int((time.perf_counter() - started) * 1e9))
        return health_pb2.HealthCheck(name=name, status=status, detail=detail, latency=latency)

    async def drive(
        self, health: Any, names: Sequence[str], interval: float = 2.0,
        publish: Callable[[health_pb2.HealthReport], Awaitable[None]] | None = None,
    ) -> None:
        """Keeps grpc.health.v1 in step with this report: NOT_SERVING while a check says so, SERVING otherwise;
        `publish` (the instance report registry's publisher) is handed each report.

        Envoy's active health check reads grpc.health.v1, so an instance whose database is unreachable or whose
        memory or disk is past its limit is taken out of the mesh until it recovers. DEGRADED (a dependency
        down) keeps serving: taking this instance out would not bring the dependency back."""
        serving: bool | None = None
        while True:
            report = await self.report()
            if publish is not None:
                await publish(report)
            now = report.status != NOT_SERVING
            if now != serving:
                status = HealthCheckResponse.SERVING if now else HealthCheckResponse.NOT_SERVING
                for name in ["", *names]:
                    await health.set(name, status)
                if serving is not None:
                    failing = [f"{c.name}: {c.detail}" for c in report.checks if c.status == NOT_SERVING]
                    log.warning("health changed", extra={"serving": now, "failing": failing})
                serving = now
            await asyncio.sleep(interval)

    async def GetHealthReport(self, request: health_pb2.GetHealthReportRequest, context: object) -> health_pb2.GetHealthReportResponse:
        return health_pb2.GetHealthReportResponse(report=await self.report())
