"""The detailed report drives grpc.health.v1: a failing check takes the instance out, recovery puts it back."""

from __future__ import annotations

import asyncio

from grpc_health.v1 import health_pb2
from grpc_health.v1._async import HealthServicer

from services.runtime.health_report import DEGRADED, NOT_SERVING, SERVING, CheckResult, HealthReporter


class Switch:
    def __init__(self) -> None:
        self.status = SERVING

    async def check(self) -> CheckResult:
        return self.status, "switch"


async def _status(health: HealthServicer, name: str) -> int:
    request = health_pb2.HealthCheckRequest(service=name)

    class Context:
        async def abort(self, code: object, details: str) -> None:
            raise AssertionError(details)

    return (await health.Check(request, Context())).status  # type: ignore[arg-type]


async def test_report_status_drives_the_standard_health_service() -> None:
    switch = Switch()
    reporter = HealthReporter("tools", "0.1.0", {"database": switch.check})
    health = HealthServicer()
    task = asyncio.create_task(reporter.drive(health, ["mcpmesh.tools.v1.ToolService"], interval=0.01))
    try:
        for status, expected in [(SERVING, health_pb2.HealthCheckResponse.SERVING),
                                 (NOT_SERVING, health_pb2.HealthCheckResponse.NOT_SERVING),
                                 (DEGRADED, health_pb2.HealthCheckResponse.SERVING)]:
            switch.status = status
            for _ in range(100):
                await asyncio.sleep(0.01)
                if await _status(health, "mcpmesh.tools.v1.ToolService") == expected and await _status(health, "") == expected:
                    break
            else:
                raise AssertionError(f"{status} did not become {expected}")
    finally:
        task.cancel()


async def test_graceful_shutdown_wins_over_a_passing_report() -> None:
    reporter = HealthReporter("tools", "0.1.0", {"database": Switch().check})
    health = HealthServicer()
    await health.enter_graceful_shutdown()
    task = asyncio.create_task(reporter.drive(health, [], interval=0.01))
    await asyncio.sleep(0.05)
    task.cancel()
    assert await _status(health, "") == health_pb2.HealthCheckResponse.NOT_SERVING
