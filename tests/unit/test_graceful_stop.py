"""Graceful stop: health turns NOT_SERVING first, calls in flight finish, new connections are refused after."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.runtime.config import VERSION, Config
from services.runtime.health_report import HealthReporter
from services.runtime.server import start
from services.runtime.service_tokens import service_credentials

SERVICE = "mcpmesh.workflows.v1.WorkflowService"


def test_in_flight_call_finishes_while_health_says_not_serving(tmp_path: Path) -> None:
    entered = asyncio.Event()
    release = asyncio.Event()

    async def slow(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        entered.set()
        await release.wait()
        return b"done:" + request

    def add(server) -> list[str]:
        # A real contract's method: a server only serves methods whose contract declares a role.
        server.add_registered_method_handlers(SERVICE, {"GetWorkflow": grpc.unary_unary_rpc_method_handler(slow)})
        return []

    async def scenario() -> None:
        config = Config(service="slow", port=0, data_dir=tmp_path, workspace_roots=(tmp_path,))
        running = await start(config, HealthReporter(service="slow", version=VERSION, checks={}), add)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}", interceptors=(await service_credentials(config)).interceptors()) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            in_flight = asyncio.ensure_future(channel.unary_unary(f"/{SERVICE}/GetWorkflow")(b"x", timeout=20))
            await asyncio.wait_for(entered.wait(), 10)
            stopping = asyncio.create_task(running.stop(grace=10, drain=0.5))

            async def not_serving() -> None:
                while (await health.Check(health_pb2.HealthCheckRequest(), timeout=2)).status != (
                    health_pb2.HealthCheckResponse.NOT_SERVING
                ):
                    await asyncio.sleep(0.02)

            await asyncio.wait_for(not_serving(), 5)  # during the drain the call is still running
            assert not in_flight.done()
            release.set()
            assert await asyncio.wait_for(in_flight, 10) == b"done:x"
            await asyncio.wait_for(stopping, 15)

    asyncio.run(scenario())
