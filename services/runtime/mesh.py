"""Channels to other services: always through Envoy's mesh listener, picked by :authority."""

from __future__ import annotations

from collections.abc import Iterable

import grpc

from services.runtime import topology
from services.runtime.health_report import DEGRADED, SERVING, CheckResult

# Per-service deadlines from the topology; Envoy's route timeouts are rendered from the same figures.
DEADLINES = topology.DEADLINES

CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 32 * 2**20),
    ("grpc.max_send_message_length", 32 * 2**20),
    ("grpc.keepalive_time_ms", 30_000),
    # Envoy does the retrying; the client-side retry machinery only adds latency per call.
    ("grpc.enable_retries", 0),
]


class Mesh:
    """One channel per upstream service, all to the same Envoy listener."""

    def __init__(self, address: str, services: Iterable[str]) -> None:
        self.address = address
        self._channels = {
            name: grpc.aio.insecure_channel(address, options=[*CHANNEL_OPTIONS, ("grpc.default_authority", name)])
            for name in services
        }

    def channel(self, service: str) -> grpc.aio.Channel:
        return self._channels[service]

    @staticmethod
    def deadline(service: str) -> float:
        return topology.deadline(service)

    async def check(self) -> CheckResult:
        """The external_services health check: can this process reach Envoy's mesh listener?"""
        states = {name: channel.get_state(try_to_connect=True) for name, channel in self._channels.items()}
        failing = sorted(name for name, state in states.items() if state == grpc.ChannelConnectivity.TRANSIENT_FAILURE)
        detail = ", ".join(f"{name} {state.name.lower()}" for name, state in sorted(states.items()))
        return (DEGRADED if failing else SERVING), f"mesh {self.address}: {detail}"

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
