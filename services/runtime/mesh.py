"""Channels to other services: always through Envoy's mesh listener, picked by :authority."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence

import grpc
from grpc_health.v1 import health_pb2

from services.runtime import topology
from services.runtime.health_report import DEGRADED, SERVING, CheckResult
from services.runtime.rpc_telemetry import client_interceptors

# Per-service deadlines from the topology; Envoy's route timeouts are rendered from the same figures.
DEADLINES = topology.DEADLINES
HEALTH_CHECK = "/grpc.health.v1.Health/Check"

CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 32 * 2**20),
    ("grpc.max_send_message_length", 32 * 2**20),
    ("grpc.keepalive_time_ms", 30_000),
    # Envoy does the retrying; the client-side retry machinery only adds latency per call.
    ("grpc.enable_retries", 0),
]


def target(address: str, service: str) -> str:
    """What a service's channel dials: the one Envoy mesh listener ("127.0.0.1:10000"), or, with placeholders, one
    name per service, as ECS Service Connect wants ("{service}.mcp.local:{port}", the port from the topology)."""
    if "{" not in address:
        return address
    port = topology.BY_NAME[service].port if service in topology.BY_NAME else 0
    return address.format(service=service, port=port)


class Mesh:
    """One channel per upstream service, all to the same Envoy listener."""

    def __init__(self, address: str, services: Iterable[str], credentials: Sequence[grpc.aio.ClientInterceptor] = ()) -> None:
        """`credentials` (ServiceCredentials.interceptors()) put this service's own token on calls that carry none."""
        self.address = address
        interceptors = [*client_interceptors(), *credentials]
        self._channels = {
            name: grpc.aio.insecure_channel(
                target(address, name), options=[*CHANNEL_OPTIONS, ("grpc.default_authority", name)], interceptors=interceptors
            )
            for name in services
        }

    def channel(self, service: str) -> grpc.aio.Channel:
        return self._channels[service]

    @staticmethod
    def deadline(service: str) -> float:
        return topology.deadline(service)

    async def check(self) -> CheckResult:
        """The external_services health check: does each service this one calls answer through the mesh?

        A standard grpc.health.v1 Check per upstream, through Envoy: it fails fast (no healthy host) as soon as
        Envoy's own health check has taken the last instance out, so this report follows within seconds.
        A missing dependency degrades this service; it does not take it out of the mesh."""
        names = [name for name in self._channels if name in topology.BY_NAME]
        results = await asyncio.gather(*(self._probe(name) for name in names))
        failing = [name for name, ok in zip(names, results, strict=True) if ok != "serving"]
        detail = ", ".join(f"{name} {ok}" for name, ok in sorted(zip(names, results, strict=True)))
        return (DEGRADED if failing else SERVING), f"mesh {self.address}: {detail or 'no upstream services'}"

    async def _probe(self, name: str) -> str:
        check = self._channels[name].unary_unary(
            HEALTH_CHECK,
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )
        try:
            response = await check(health_pb2.HealthCheckRequest(service=topology.service(name).grpc_service), timeout=1.0)
        except grpc.aio.AioRpcError as error:
            return error.code().name.lower()
        return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status).lower()

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
