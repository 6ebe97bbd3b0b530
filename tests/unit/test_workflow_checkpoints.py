"""The SQLite checkpoints spread over several files (ShardedSaver): each thread whole in one file, found again by
another instance or after a restart, listed and deleted there."""

from __future__ import annotations

import operator
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from langgraph.graph import END, START, StateGraph

from services.workflows.checkpoints import SQLITE_SHARDS, ShardedSaver, open_sqlite_checkpoints


class Counted(TypedDict, total=False):
    seen: Annotated[list[str], operator.add]


def two_steps() -> StateGraph:
    graph = StateGraph(Counted)
    graph.add_node("first", lambda state: {"seen": ["first"]})
    graph.add_node("second", lambda state: {"seen": ["second"]})
    graph.add_edge(START, "first")
    graph.add_edge("first", "second")
    graph.add_edge("second", END)
    return graph


def files(folder: Path) -> list[Path]:
    return [folder / ("workflow-checkpoints.db" if n == 0 else f"workflow-checkpoints-{n}.db")
            for n in range(SQLITE_SHARDS)]


def threads_in(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        return {row[0] for row in db.execute("SELECT DISTINCT thread_id FROM checkpoints")}


def config(thread: str) -> Any:
    return {"configurable": {"thread_id": thread}}


THREADS = [f"wf-{n}" for n in range(24)]


@asynccontextmanager
async def saved(folder: Path) -> AsyncIterator[ShardedSaver]:
    """The service's checkpointer over `folder`, after the two-step graph ran once on each of THREADS."""
    async with AsyncExitStack() as stack:
        saver = await open_sqlite_checkpoints(folder, stack)
        assert isinstance(saver, ShardedSaver)
        graph = two_steps().compile(checkpointer=saver)
        for thread in THREADS:
            assert (await graph.ainvoke({}, config(thread)))["seen"] == ["first", "second"]
        yield saver


async def test_each_threads_checkpoints_are_whole_in_the_file_its_id_names(tmp_path: Path) -> None:
    async with saved(tmp_path) as saver:
        for n, path in enumerate(files(tmp_path)):
            assert threads_in(path) == {t for t in THREADS if saver.saver_of(t) is saver.savers[n]}
        assert all(threads_in(path) for path in files(tmp_path)), "24 threads leave no file empty"
        assert len(await _all(saver)) == 4 * len(THREADS)  # input, start, first, second: every file listed


async def test_another_instance_over_the_same_folder_finds_every_thread(tmp_path: Path) -> None:
    async with saved(tmp_path):
        pass
    async with AsyncExitStack() as stack:  # a restart, or a second instance: the same ids lead to the same files
        other = await open_sqlite_checkpoints(tmp_path, stack)
        graph = two_steps().compile(checkpointer=other)
        for thread in THREADS:
            assert (await graph.aget_state(config(thread))).values["seen"] == ["first", "second"]
            assert [c.metadata["step"] async for c in other.alist(config(thread))] == [2, 1, 0, -1]


async def test_a_deleted_thread_leaves_the_others_in_its_file(tmp_path: Path) -> None:
    async with saved(tmp_path) as saver:
        gone = THREADS[0]
        neighbours = [t for t in THREADS[1:] if saver.saver_of(t) is saver.saver_of(gone)]
        assert neighbours
        await saver.adelete_thread(gone)
        assert await saver.aget_tuple(config(gone)) is None
        for thread in neighbours:
            assert await saver.aget_tuple(config(thread)) is not None
        assert len(await _all(saver)) == 4 * (len(THREADS) - 1)


async def test_a_list_of_every_thread_stops_at_its_limit_across_files(tmp_path: Path) -> None:
    async with saved(tmp_path) as saver:
        assert max(len(threads_in(path)) for path in files(tmp_path)) * 4 < 30  # so 30 spans more than one file
        assert len([c async for c in saver.alist(None, limit=30)]) == 30
        assert len(await _all(saver)) == 4 * len(THREADS)


def test_a_sharded_saver_needs_a_saver() -> None:
    with pytest.raises(ValueError, match="at least one saver"):
        ShardedSaver([])


async def _all(saver: Any) -> list[Any]:
    return [c async for c in saver.alist(None)]


OPEN_AT = """
import asyncio, sys, time
from contextlib import AsyncExitStack
from pathlib import Path
from services.runtime.state import SqliteDatabase
from services.workflows.checkpoints import open_sqlite_checkpoints

async def main(folder: Path, at: float) -> None:
    time.sleep(max(0.0, at - time.time()))
    SqliteDatabase(folder / "workflows.db", "CREATE TABLE IF NOT EXISTS t (n INTEGER);")
    async with AsyncExitStack() as stack:
        await open_sqlite_checkpoints(folder, stack)

asyncio.run(main(Path(sys.argv[1]), float(sys.argv[2])))
"""


def test_instances_that_start_together_on_a_new_folder_all_open_it(tmp_path: Path) -> None:
    """Seen in CI: two workflows instances started at once on a new data folder, and one failed at start-up with
    "database is locked" while both switched a new checkpoint file to WAL."""
    for round_ in range(3):
        folder = tmp_path / str(round_)
        folder.mkdir()
        at = time.time() + 2.0  # every process is up and waiting by then
        processes = [subprocess.Popen([sys.executable, "-c", OPEN_AT, str(folder), str(at)],
                                      stderr=subprocess.PIPE, text=True) for _ in range(4)]
        for process in processes:
            _, errors = process.communicate(timeout=60)
            assert process.returncode == 0, errors
        assert all(threads_in(path) == set() for path in files(folder))
