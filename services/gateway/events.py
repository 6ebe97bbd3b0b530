"""The gateway's event feed: workflow updates from the workflows service, health changes, metrics snapshots."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import json
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import json_format
from mcpmesh.health.v1 import health_pb2
from mcpmesh.workflows.v1 import workflow_service_pb2, workflow_service_pb2_grpc

from services.gateway.system_health import SystemHealth
from services.runtime.mesh import Mesh

EVENT_TYPES = ("workflow_update", "service_health", "system_metrics")


@dataclass(frozen=True)
class FeedEvent:
    type: str
    data: dict[str, Any]
    created: dt.datetime


class EventFeed:
    def __init__(self, mesh: Mesh, health: SystemHealth, *, health_every: float = 5.0, metrics_every: float = 10.0) -> None:
        self._workflows = workflow_service_pb2_grpc.WorkflowServiceStub(mesh.channel("workflows"))
        self._health = health
        self._health_every = health_every
        self._metrics_every = metrics_every

    async def subscribe(self, types: set[str], ready: asyncio.Event | None = None) -> AsyncIterator[FeedEvent]:
        """Events of the given types until the caller stops iterating; `ready` is set once the upstream watch is open."""
        queue: asyncio.Queue[FeedEvent] = asyncio.Queue(maxsize=1000)
        wanted = types or set(EVENT_TYPES)
        ready = ready or asyncio.Event()
        if "workflow_update" not in wanted:
            ready.set()
        producers: dict[str, Callable[[asyncio.Queue[FeedEvent]], Coroutine[Any, Any, None]]] = {
            "workflow_update": functools.partial(self._workflow_updates, ready=ready),
            "service_health": self._health_changes,
            "system_metrics": self._metrics_snapshots,
        }
        tasks = [asyncio.create_task(producers[t](queue)) for t in sorted(wanted)]
        try:
            while True:
                yield await queue.get()
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _workflow_updates(self, queue: asyncio.Queue[FeedEvent], ready: asyncio.Event) -> None:
        backoff = 0.5
        while True:
            try:
                stream = self._workflows.WatchWorkflow(workflow_service_pb2.WatchWorkflowRequest(id="-"))
                await stream.initial_metadata()
                ready.set()
                async for response in stream:
                    backoff = 0.5
                    data = json_format.MessageToDict(response.event, preserving_proto_field_name=True)
                    await queue.put(FeedEvent("workflow_update", data, _now()))
            except grpc.aio.AioRpcError:
                pass  # workflows restarting or unreachable: reconnect with back-off
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)

    async def _health_changes(self, queue: asyncio.Queue[FeedEvent]) -> None:
        last = ""
        while True:
            states = await self._health.check()
            data = {
                "services": [
                    {"service": s.service, "status": _status_name(s.status),
                     "instances": [{"address": i.address, "mesh_status": i.mesh_status} for i in s.instances]}
                    for s in states
                ]
            }
            fingerprint = json.dumps(data, sort_keys=True)
            if fingerprint != last:
                last = fingerprint
                await queue.put(FeedEvent("service_health", data, _now()))
            await asyncio.sleep(self._health_every)

    async def _metrics_snapshots(self, queue: asyncio.Queue[FeedEvent]) -> None:
        while True:
            metrics = await self._health.metrics()
            data = {"metrics": [{"service": s, "name": n, "value": v} for s, n, v in metrics]}
            await queue.put(FeedEvent("system_metrics", data, _now()))
            await asyncio.sleep(self._metrics_every)


def _status_name(status: health_pb2.HealthStatus.ValueType) -> str:
    return health_pb2.HealthStatus.Name(status).removeprefix("HEALTH_STATUS_").lower()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
