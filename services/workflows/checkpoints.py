"""What the engine adds to a LangGraph checkpointer: the first read of a workflow it just created skips the store."""

from __future__ import annotations

from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver, CheckpointTuple


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
