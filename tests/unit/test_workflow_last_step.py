"""The end of a run: the last step's write ends the workflow, and LangGraph's last checkpoint writes follow it; the
first read of a new workflow's checkpoints is answered without the store."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from services.runtime.errors import FailedPrecondition
from services.workflows.checkpoints import NewThreads
from services.workflows.engine import WorkflowEngine
from tests.unit.test_workflow_engine import FakeCalls, ended, engine_on, eventually, run, types_of


def hold_last_checkpoint(engine: WorkflowEngine, *, fail: bool = False) -> tuple[asyncio.Event, list[str]]:
    """Makes the checkpoint saved after the last step (the one holding the result) wait for the returned gate, or
    fail; the list gets the thread of each checkpoint held."""
    saver: Any = engine._checkpointer
    gate, held = asyncio.Event(), []
    put = saver.aput

    async def aput(config: Any, checkpoint: Any, metadata: Any, versions: Any) -> Any:
        if "result" in checkpoint["channel_values"]:
            held.append(config["configurable"]["thread_id"])
            if fail:
                raise RuntimeError("checkpoint store went away")
            await gate.wait()
        return await put(config, checkpoint, metadata, versions)

    saver.aput = aput
    return gate, held


def test_the_last_steps_write_ends_the_workflow_before_langgraph_saves_its_last_checkpoint(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with engine_on(tmp_path, FakeCalls()) as engine:
            gate, held = hold_last_checkpoint(engine)
            workflow = await engine.create("code_analysis", {"path": str(tmp_path)}, "")
            await eventually(ended(engine.store, workflow.id), "the workflow to end")
            record = await engine.store.get(workflow.id)
            assert record.state == "succeeded" and record.progress == 100
            assert record.result is not None and record.result["summary"]
            # LangGraph is still saving its last checkpoint: the run keeps a task (and its room), but is not active
            assert held == [workflow.id] and engine.busy == 1 and engine.active == 0
            gate.set()
            await eventually(lambda: engine.busy == 0, "the run to finish its checkpoints")
            config: Any = {"configurable": {"thread_id": workflow.id}}
            assert (await engine._graphs["code_analysis"].aget_state(config)).values["result"] == record.result
            assert types_of(await engine.store.events_after(workflow.id, 0)).count("succeeded") == 1

    run(scenario)


def test_a_failed_checkpoint_after_the_end_leaves_the_workflow_succeeded(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        async with engine_on(tmp_path, FakeCalls()) as engine:
            hold_last_checkpoint(engine, fail=True)
            workflow = await engine.create("code_analysis", {"path": str(tmp_path)}, "")
            await eventually(lambda: engine.busy == 0, "the run to stop")
            record = await engine.store.get(workflow.id)
            assert record.state == "succeeded" and record.error is None
            events = types_of(await engine.store.events_after(workflow.id, 0))
            assert events[-1] == "succeeded" and "failed" not in events

    run(scenario)
    assert "checkpoint after the end of a workflow not written" in caplog.text


def test_cancel_and_close_while_the_last_checkpoint_is_saved_do_not_end_the_workflow_again(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with engine_on(tmp_path, FakeCalls()) as engine:
            hold_last_checkpoint(engine)
            workflow = await engine.create("code_analysis", {"path": str(tmp_path)}, "")
            await eventually(ended(engine.store, workflow.id), "the workflow to end")
            assert engine.busy == 1
            with pytest.raises(FailedPrecondition, match="already ended as succeeded"):
                await engine.cancel(workflow.id)
            await engine.close()  # stops the run that is still saving
            assert engine.busy == 0
            assert (await engine.store.get(workflow.id)).state == "succeeded"
            events = types_of(await engine.store.events_after(workflow.id, 0))
            assert events[-1] == "succeeded" and "cancelled" not in events

    run(scenario)


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
            await eventually(lambda: engine.busy == 0, "the run to finish")
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
