"""The first read of a new workflow's checkpoints is answered without the store (NewThreads)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from services.workflows.checkpoints import NewThreads
from tests.unit.test_workflow_engine import FakeCalls, engine_on, eventually, run


def test_a_new_workflows_run_reads_no_checkpoint_from_the_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[str] = []
    read = AsyncSqliteSaver.aget_tuple

    async def counted(self: AsyncSqliteSaver, config: Any) -> Any:
        reads.append(config["configurable"]["thread_id"])
        return await read(self, config)

    monkeypatch.setattr(AsyncSqliteSaver, "aget_tuple", counted)

    async def scenario() -> None:
        async with engine_on(tmp_path, FakeCalls()) as engine:
            workflow = await engine.create("code_analysis", {"path": str(tmp_path)}, "")
            await eventually(lambda: engine.active == 0, "the run to finish")
            assert reads == []
            config: Any = {"configurable": {"thread_id": workflow.id}}
            assert (await engine._graphs["code_analysis"].aget_state(config)).values["result"]  # later reads: the store
            assert reads == [workflow.id]

    run(scenario)


def test_new_threads_answers_the_first_read_of_a_new_thread_only() -> None:
    async def scenario() -> None:
        saver = InMemorySaver()
        new = NewThreads(saver)
        config: Any = {"configurable": {"thread_id": "t1", "checkpoint_ns": ""}}
        checkpoint = {"v": 4, "id": "c1", "ts": "2026-01-01T00:00:00+00:00", "channel_values": {"x": 1},
                      "channel_versions": {}, "versions_seen": {}, "updated_channels": None}
        await saver.aput(config, checkpoint, {}, {})  # type: ignore[arg-type]
        new.add("t1")
        assert await saver.aget_tuple(config) is None  # told it is new: not read
        assert (await saver.aget_tuple(config)) is not None  # once only
        new.add("t1")
        pinned: Any = {"configurable": {"thread_id": "t1", "checkpoint_ns": "", "checkpoint_id": "c1"}}
        assert (await saver.aget_tuple(pinned)) is not None  # a read of a given checkpoint always goes to the store
        new.discard("t1")
        assert (await saver.aget_tuple(config)) is not None

    asyncio.run(scenario())
