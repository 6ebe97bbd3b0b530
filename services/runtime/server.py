"""Bootstrap and graceful shutdown shared by the four servers."""

from __future__ import annotations

import asyncio
import inspect
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
import uvloop
from google.protobuf import descriptor_pool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection
from mcpmesh.health.v1 import health_pb2 as report_pb2
from mcpmesh.health.v1 import health_pb2_grpc as report_pb2_grpc

from services.runtime import telemetry
from services.runtime.config import Config
from services.runtime.health_report import HealthReporter
from services.runtime.instance_reports import Publisher, advertised_address, open_instance_reports
from services.runtime.json_bodies import JsonBodyChecker
from services.runtime.rate_limits import RateLimiter
from services.runtime.roles import request_type, role_of
from services.runtime.rpc_telemetry import instrument
from services.runtime.service_tokens import Keys, TokenGuard
from services.runtime.status import ErrorMapping, Guard

log = logging.getLogger("mcpmesh.server")

SERVER_OPTIONS = [
    ("grpc.max_receive_message_length", 32 * 2**20),
    ("grpc.max_send_message_length", 32 * 2**20),
    ("grpc.so_reuseport", 0),
    # Above what the edge lets through: 16 KiB of client headers (the path twice after transcoding), so an
    # over-long path is Envoy's 431 and never this server's RESOURCE_EXHAUSTED, plus the edge's base64 copy
    # of a JSON body up to the 1 MiB cap (x-mcpmesh-json-body, checked for unknown fields here).
    ("grpc.max_metadata_size", 2 * 2**20),
    ("grpc.absolute_max_metadata_size", 3 * 2**20),
]


class _Registrar:
    """Stands in for the server while servicers are added, so every handler passes through ErrorMapping.

    Generated `add_*Servicer_to_server` functions hand the same handlers to both calls below; the
    registered-method table is the one gRPC serves from, so the generic copy is rebuilt from it."""

    def __init__(self, server: grpc.aio.Server, mapping: ErrorMapping, service: str = "") -> None:
        self._server = server
        self._mapping = mapping
        self._service = service

    def add_registered_method_handlers(self, service: str, handlers: dict[str, grpc.RpcMethodHandler]) -> None:
        """Each method's role comes from its contract; one without a role stops the start-up (MissingRole)."""
        wrapped = {
            name: self._mapping.wrap(f"/{service}/{name}", h, role_of(service, name), request_type(service, name))
            for name, h in handlers.items()
        }
        # Outermost: the call's span is current for the guard, the handler and the error mapping's log line.
        wrapped = {name: instrument(self._service, f"/{service}/{name}", h) for name, h in wrapped.items()}
        self._server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, wrapped),))
        self._server.add_registered_method_handlers(service, wrapped)

    def add_generic_rpc_handlers(self, handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        """Ignored: the generated code passes the same handlers to add_registered_method_handlers."""


@dataclass
class Running:
    """A started server, its bound port, and what to close when it stops."""

    server: grpc.aio.Server
    port: int
    health: HealthServicer
    service_names: Sequence[str]
    on_stop: list[Callable[[], Awaitable[None] | None]] = field(default_factory=list)

    async def stop(self, grace: float, drain: float = 0.0) -> None:
        """Health goes NOT_SERVING first so Envoy stops routing here; in-flight calls then get `grace`."""
        await self.health.enter_graceful_shutdown()
        if drain:
            await asyncio.sleep(drain)
        await self.server.stop(grace)
        for close in reversed(self.on_stop):
            result = close()
            if inspect.isawaitable(result):
                await result


async def start(
    config: Config,
    reporter: HealthReporter,
    add_servicers: Callable[[Any], Sequence[str]],
    *,
    extra_reflection: Sequence[str] = (),
    guard: Guard | None = None,
) -> Running:
    """Builds the server with health, reflection and the detailed report, binds it and starts it.

    Every service added through the registrar (the detailed report too) is checked against its contract's
    roles and passes through `guard`; grpc.health.v1 and reflection are added directly: public by design."""
    server = grpc.aio.server(options=SERVER_OPTIONS)
    bodies = None
    on_stop: list[Callable[[], Awaitable[None] | None]] = []
    if guard is None:  # no open default: a service without its own guard verifies tokens itself
        bodies = JsonBodyChecker([])
        token_guard = TokenGuard(await Keys.open(config), RateLimiter.from_config(config), bodies)
        on_stop.append(token_guard.close)
        guard = token_guard
    registrar = _Registrar(server, ErrorMapping(f"{config.service}.mcpmesh", guard), config.service)
    names = list(add_servicers(registrar))
    if bodies is not None:  # the edge routes token callers here directly: their JSON bodies are checked here
        bodies.add([descriptor_pool.Default().FindServiceByName(name) for name in names])
    report_pb2_grpc.add_HealthReportServiceServicer_to_server(reporter, registrar)  # type: ignore[arg-type]
    health = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    report_name = report_pb2.DESCRIPTOR.services_by_name["HealthReportService"].full_name
    all_names = [*names, *extra_reflection, report_name, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name]
    reflection.enable_server_reflection([*all_names, reflection.SERVICE_NAME], server)
    port = server.add_insecure_port(f"{config.host}:{config.port}")
    if port == 0:
        raise SystemExit(f"cannot bind {config.host}:{config.port}")
    await server.start()
    reporter.instance = advertised_address(config.host, port)
    for name in ["", *all_names]:
        await health.set(name, health_pb2.HealthCheckResponse.SERVING)
    # From here the detailed report's checks drive grpc.health.v1, which Envoy's active health check reads, and
    # the report is published under this instance's address for the gateway's system health.
    publisher = Publisher(await open_instance_reports(config.state_url, config.data_dir), config.service, reporter.instance)
    driving = asyncio.get_running_loop().create_task(reporter.drive(health, all_names, publish=publisher))
    stop_telemetry = telemetry.start(config, port, reporter.metrics)
    log.info("serving", extra={"port": port, "services": names})

    async def stop_driving() -> None:
        driving.cancel()
        await publisher.withdraw()
        publisher.reports.close()

    return Running(server, port, health, all_names, on_stop=[*on_stop, stop_driving, stop_telemetry])


async def serve(running: Running, config: Config) -> None:
    """Runs until SIGTERM or SIGINT, then shuts down gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down", extra={"grace_seconds": config.grace_seconds})
    await running.stop(config.grace_seconds, config.drain_seconds)
    log.info("stopped")


def run_main(service: str, build: Callable[[Config], Awaitable[Running]]) -> None:
    """Entry point of `python -m services.<service>`: config from the environment, then serve until signalled."""
    from services.runtime.logs import configure_logging

    config = Config.from_env(service)
    configure_logging(service, config.log_level)
    telemetry.configure(config)

    async def main() -> None:
        running = await build(config)
        await serve(running, config)

    # uvloop: a cheaper event loop per call than asyncio's own (it roughly halved it on the gateway's old relay path).
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())
