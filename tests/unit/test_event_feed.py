"""The gateway's event feed: one upstream watch for every subscriber, bounded queues, slow subscribers dropped."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import grpc
import pytest
from mcpmesh.workflows.v1 import workflow_pb2, workflow_service_pb2

from services.gateway.events import QUEUE_SIZE, EventFeed, SlowSubscriber


class FakeWatch:
    def __init__(self, source: asyncio.Queue[Any]) -> None:
        self._source = source

    async def initial_metadata(self) -> tuple[()]:
        return ()

    def __aiter__(self) -> FakeWatch:
        return self

    async def __anext__(self) -> workflow_service_pb2.WatchWorkflowResponse:
        return await self._source.get()


class FakeWorkflows:
    def __init__(self) -> None:
        self.events: asyncio.Queue[Any] = asyncio.Queue()
        self.calls = 0

    def WatchWorkflow(self, request: Any) -> FakeWatch:
        self.calls += 1
        return FakeWatch(self.events)


class NoHealth:
    async def check(self) -> list[Any]:
        return []

    async def metrics(self) -> list[Any]:
        return []


class Mesh:
    def __init__(self) -> None:
        self.channel_ = grpc.aio.insecure_channel("127.0.0.1:9")

    def channel(self, name: str) -> grpc.aio.Channel:
        return self.channel_


def event(sequence: int) -> workflow_service_pb2.WatchWorkflowResponse:
    return workflow_service_pb2.WatchWorkflowResponse(event=workflow_pb2.WorkflowEvent(workflow_id="wf", sequence=sequence))


@pytest.fixture()
async def feed_and_upstream():
    mesh = Mesh()
    feed = EventFeed(mesh, NoHealth())  # type: ignore[arg-type]
    upstream = FakeWorkflows()
    feed._workflows = upstream  # type: ignore[assignment]
    yield feed, upstream
    await feed.close()
    await mesh.channel_.close()


async def _collect(feed: EventFeed, count: int, ready: asyncio.Event) -> list[int]:
    seen = []
    async for item in feed.subscribe({"workflow_update"}, ready):
        seen.append(int(item.data["sequence"]))
        if len(seen) == count:
            break
    return seen


async def test_two_hundred_subscribers_share_one_upstream_watch_and_see_every_event(feed_and_upstream) -> None:
    feed, upstream = feed_and_upstream
    readies = [asyncio.Event() for _ in range(200)]
    readers = [asyncio.create_task(_collect(feed, 50, ready)) for ready in readies]
    await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 5)
    for sequence in range(1, 51):
        upstream.events.put_nowait(event(sequence))
    results = await asyncio.wait_for(asyncio.gather(*readers), 10)
    assert all(seen == list(range(1, 51)) for seen in results)
    assert upstream.calls == 1 and feed.upstream_watches == 1
    await asyncio.sleep(0)
    assert feed.subscriber_count == 0 and not feed._producers  # the watch stops with its last subscriber


async def test_a_slow_subscriber_is_dropped_without_holding_back_the_others(feed_and_upstream) -> None:
    feed, upstream = feed_and_upstream
    slow_ready, fast_ready = asyncio.Event(), asyncio.Event()
    slow = feed.subscribe({"workflow_update"}, slow_ready)
    first = asyncio.create_task(slow.__anext__())  # subscribes, then reads nothing more for a while
    fast = asyncio.create_task(_collect(feed, QUEUE_SIZE + 10, fast_ready))
    await asyncio.wait_for(asyncio.gather(slow_ready.wait(), fast_ready.wait()), 5)
    for sequence in range(1, QUEUE_SIZE + 11):
        upstream.events.put_nowait(event(sequence))
        await asyncio.sleep(0)  # events arrive one by one, as from the network
    assert len(await asyncio.wait_for(fast, 10)) == QUEUE_SIZE + 10
    with pytest.raises(SlowSubscriber):
        await first
        while True:
            await slow.__anext__()
    with contextlib.suppress(StopAsyncIteration):
        await slow.aclose()
