"""What the engine adds to LangGraph checkpointers: the first read of a workflow it just created skips the store, and
the SQLite checkpoints are spread over several files so that workflows do not queue on one connection."""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    DeltaChannelHistory,
)
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from services.runtime.state import setup_lock_async


class NewThreads:
    """Threads that have no checkpoint yet: workflows this instance has just created and not yet started.

    LangGraph begins every run by reading the thread's latest checkpoint. For a new workflow there is none, so that
    read is answered here, once, without a round trip to the store: one of the nine checkpointer calls of a
    three-step run (on AsyncSqliteSaver each is a few thread hops, and they take turns on one connection)."""

    def __init__(self, saver: BaseCheckpointSaver) -> None:
        self._ids: set[str] = set()
        read = saver.aget_tuple

        async def aget_tuple(config: RunnableConfig) -> CheckpointTuple | None:
            settings: dict[str, Any] = config.get("configurable", {})
            thread = settings.get("thread_id")
            if thread in self._ids and not settings.get("checkpoint_id") and not settings.get("checkpoint_ns"):
                self._ids.discard(thread)
                return None
            return await read(config)

        saver.aget_tuple = aget_tuple  # type: ignore[method-assign]

    def add(self, thread_id: str) -> None:
        self._ids.add(thread_id)

    def discard(self, thread_id: str) -> None:
        self._ids.discard(thread_id)


SQLITE_SHARDS = 4
"""Files the SQLite checkpoints are spread over. Fixed: a thread's file follows from its id, so every instance and
every restart must use the same number (a change would strand the checkpoints of unfinished runs)."""


class ShardedSaver(BaseCheckpointSaver[Any]):
    """One LangGraph checkpointer over several of the same kind, each thread's checkpoints in one of them, chosen
    by a stable hash (CRC-32) of the thread id.

    Why: AsyncSqliteSaver serialises every call on its one connection behind one lock, and each call is a few hops to
    the connection's thread and back. With many workflows at once that lock, not the CPU, bounds an instance (with 16
    at once it was held about 90% of the time). Threads on different savers do not wait for each other. Calls that
    name no thread (a list of everything) go to every saver in turn."""

    def __init__(self, savers: list[BaseCheckpointSaver[Any]]) -> None:
        if not savers:
            raise ValueError("ShardedSaver needs at least one saver")
        super().__init__(serde=savers[0].serde)
        self.savers = savers

    def saver_of(self, thread_id: str) -> BaseCheckpointSaver[Any]:
        return self.savers[zlib.crc32(thread_id.encode()) % len(self.savers)]

    def _of(self, config: RunnableConfig) -> BaseCheckpointSaver[Any]:
        return self.saver_of(str(config["configurable"]["thread_id"]))

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await self._of(config).aget_tuple(config)

    async def alist(self, config: RunnableConfig | None, *, filter: dict[str, Any] | None = None,
                    before: RunnableConfig | None = None, limit: int | None = None) -> AsyncIterator[CheckpointTuple]:
        savers = [self._of(config)] if config and "thread_id" in config.get("configurable", {}) else self.savers
        left = limit
        for saver in savers:
            async for item in saver.alist(config, filter=filter, before=before, limit=left):
                yield item
                if left is not None:
                    left -= 1
                    if left <= 0:
                        return

    async def aput(self, config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata,
                   new_versions: ChannelVersions) -> RunnableConfig:
        return await self._of(config).aput(config, checkpoint, metadata, new_versions)

    async def aput_writes(self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str,
                          task_path: str = "") -> None:
        await self._of(config).aput_writes(config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        await self.saver_of(thread_id).adelete_thread(thread_id)

    async def aget_delta_channel_history(self, *, config: RunnableConfig,
                                         channels: Sequence[str]) -> Mapping[str, DeltaChannelHistory]:
        return await self._of(config).aget_delta_channel_history(config=config, channels=channels)

    def get_next_version(self, current: Any, channel: None) -> Any:
        return self.savers[0].get_next_version(current, channel)

    def with_allowlist(self, extra_allowlist: Collection[tuple[str, ...]]) -> ShardedSaver:
        return ShardedSaver([saver.with_allowlist(extra_allowlist) for saver in self.savers])


async def open_sqlite_checkpoints(folder: Path, stack: AsyncExitStack,
                                  shards: int = SQLITE_SHARDS) -> BaseCheckpointSaver[Any]:
    """AsyncSqliteSaver on workflow-checkpoints.db, workflow-checkpoints-1.db, ... in `folder` (the first keeps the
    name of the single file it replaced), set up, under one ShardedSaver; closed with `stack`. Must be called in the
    running event loop."""
    savers: list[BaseCheckpointSaver[Any]] = []
    for n in range(shards):
        name = "workflow-checkpoints.db" if n == 0 else f"workflow-checkpoints-{n}.db"
        saver = await stack.enter_async_context(AsyncSqliteSaver.from_conn_string(str(folder / name)))
        async with setup_lock_async(folder / name):
            await saver.setup()
        savers.append(saver)
    return ShardedSaver(savers)
