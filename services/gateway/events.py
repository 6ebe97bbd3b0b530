"""The gateway's event feed: workflow updates from the workflows service, health changes, metrics snapshots."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import grpc
from google.protobuf import json_format
from mcpmesh.health.v1 import health_pb2
from mcpmesh.workflows.v1 import workflow_service_pb2, workflow_service_pb2_grpc

from services.gateway.system_health import SystemHealth
from services.runtime.clock import utcnow
from services.runtime.errors import DomainError
from services.runtime.mesh import Mesh

EVENT_TYPES = ("workflow_update", "service_health", "system_metrics")


@dataclass(frozen=True)
class FeedEvent:
    type: str
    data: dict[str, Any]
    created: dt.datetime

    def frame(self, sequence: int) -> str:
        """The WebSocket message for this event: type, sequence, time and payload as JSON."""
        return json.dumps({"type": self.type, "sequence": sequence, "time": self.created.isoformat(), "data": self.data})

    @cached_property
    def workflow_frame(self) -> str:
        """A workflow event's message, the same for every subscriber (its sequence is the workflow's): made once,
        not once per subscriber."""
        return self.frame(int(self.data.get("sequence") or 0))


class SlowSubscriber(Exception):
    """A subscriber fell `QUEUE_SIZE` events behind: it is dropped so the others are not slowed down."""


QUEUE_SIZE = 1000


class _Subscriber:
    def __init__(self, types: set[str]) -> None:
        self.types = types
        self.queue: asyncio.Queue[FeedEvent] = asyncio.Queue(maxsize=QUEUE_SIZE)
        self.overflowed = False

    def offer(self, event: FeedEvent) -> None:
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed = True
            # Wake the reader so it notices at once, even with a full queue.
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
            self.queue.put_nowait(FeedEvent("_dropped", {}, utcnow()))


class EventFeed:
    """One upstream producer per event type (one WatchWorkflow for every subscriber), started with the first
    subscriber of that type and stopped after the last; each subscriber reads its own bounded queue."""

    def __init__(self, mesh: Mesh, health: SystemHealth, *, health_every: float = 5.0, metrics_every: float = 10.0) -> None:
        self._workflows = workflow_service_pb2_grpc.WorkflowServiceStub(mesh.channel("workflows"))
        self._health = health
        self._health_every = health_every
        self._metrics_every = metrics_every
        self._subscribers: set[_Subscriber] = set()
        self._producers: dict[str, asyncio.Task[None]] = {}
        self._watch_open = asyncio.Event()  # the shared upstream workflow watch is open
        self.upstream_watches = 0  # WatchWorkflow calls opened so far (one per reconnect, not per subscriber)
        self._latest: dict[str, FeedEvent] = {}  # the last health and metrics snapshots, given to new subscribers

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def _publish(self, event: FeedEvent) -> None:
        if event.type != "workflow_update":
            self._latest[event.type] = event
        for subscriber in list(self._subscribers):
            if event.type in subscriber.types:
                subscriber.offer(event)

    def _start(self, kind: str) -> None:
        task = self._producers.get(kind)
        if task is not None and not task.done():
            return
        producers: dict[str, Callable[[], Coroutine[Any, Any, None]]] = {
            "workflow_update": self._workflow_updates,
            "service_health": self._health_changes,
            "system_metrics": self._metrics_snapshots,
        }
        self._producers[kind] = asyncio.create_task(producers[kind]())

    async def _stop_unused(self) -> None:
        wanted = {t for s in self._subscribers for t in s.types}
        for kind in [k for k in self._producers if k not in wanted]:
            task = self._producers.pop(kind)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            self._latest.pop(kind, None)
            if kind == "workflow_update":
                self._watch_open.clear()

    async def subscribe(self, types: set[str], ready: asyncio.Event | None = None) -> AsyncIterator[FeedEvent]:
        """Events of the given types until the caller stops iterating; `ready` is set once the upstream watch is
        open. Raises SlowSubscriber when this subscriber fell too far behind."""
        subscriber = _Subscriber(set(types or EVENT_TYPES))
        self._subscribers.add(subscriber)
        try:
            for kind in sorted(subscriber.types):
                if kind in self._latest and kind in self._producers:
                    subscriber.offer(self._latest[kind])
                self._start(kind)
            if ready is not None:
                if "workflow_update" in subscriber.types:
                    await self._watch_open.wait()
                ready.set()
            while True:
                event = await subscriber.queue.get()
                if subscriber.overflowed and event.type == "_dropped":
                    raise SlowSubscriber(f"more than {QUEUE_SIZE} events behind")
                yield event
        finally:
            self._subscribers.discard(subscriber)
            await self._stop_unused()

    async def workflow_events(self, workflow_id: str, after_sequence: int) -> AsyncIterator[FeedEvent]:
        """One workflow's events after `after_sequence`: the stored ones, then live ones until it ends."""
        stream = self._workflows.WatchWorkflow(workflow_service_pb2.WatchWorkflowRequest(id=workflow_id, after_sequence=after_sequence))
        try:
            async for response in stream:
                yield FeedEvent("workflow_update", json_format.MessageToDict(response.event, preserving_proto_field_name=True), utcnow())
        except grpc.aio.AioRpcError as error:
            reason = "WORKFLOW_NOT_FOUND" if error.code() == grpc.StatusCode.NOT_FOUND else error.code().name
            raise DomainError(f"workflow {workflow_id}: {error.details()}", reason=reason) from None
        finally:
            stream.cancel()

    async def close(self) -> None:
        self._subscribers.clear()
        await self._stop_unused()

    async def _workflow_updates(self) -> None:
        backoff = 0.5
        while True:
            try:
                stream = self._workflows.WatchWorkflow(workflow_service_pb2.WatchWorkflowRequest(id="-"))
                self.upstream_watches += 1
                await stream.initial_metadata()
                self._watch_open.set()
                async for response in stream:
                    backoff = 0.5
                    data = json_format.MessageToDict(response.event, preserving_proto_field_name=True)
                    self._publish(FeedEvent("workflow_update", data, utcnow()))
            except grpc.aio.AioRpcError:
                pass  # workflows restarting or unreachable: reconnect with back-off
            self._watch_open.clear()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)

    async def _health_changes(self) -> None:
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
                self._publish(FeedEvent("service_health", data, utcnow()))
            await asyncio.sleep(self._health_every)

    async def _metrics_snapshots(self) -> None:
        while True:
            metrics = await self._health.metrics()
            data = {"metrics": [{"service": s, "name": n, "value": v} for s, n, v in metrics]}
            self._publish(FeedEvent("system_metrics", data, utcnow()))
            await asyncio.sleep(self._metrics_every)


def _status_name(status: health_pb2.HealthStatus.ValueType) -> str:
    return health_pb2.HealthStatus.Name(status).removeprefix("HEALTH_STATUS_").lower()

