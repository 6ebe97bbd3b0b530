"""SqliteDatabase: quick calls run on the event loop when the database is free, and wait on the worker otherwise."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from services.runtime import state
from services.runtime.state import SqliteDatabase

SCHEMA = "CREATE TABLE IF NOT EXISTS items (n INTEGER PRIMARY KEY);"


def insert(n: int) -> Callable[[sqlite3.Connection], str]:
    """Inserts n; returns the name of the thread it ran on."""

    def work(db: sqlite3.Connection) -> str:
        db.execute("INSERT INTO items (n) VALUES (?)", (n,))
        return threading.current_thread().name

    return work


async def test_a_quick_call_on_a_free_database_runs_on_the_event_loop(tmp_path: Path) -> None:
    database = SqliteDatabase(tmp_path / "q.db", SCHEMA)
    try:
        loop_thread = threading.current_thread().name
        assert await database.transaction(insert(1), quick=True) == loop_thread
        assert await database.transaction(insert(2)) != loop_thread  # not quick: the worker thread
        rows = await database.run(lambda db: db.execute("SELECT n FROM items ORDER BY n").fetchall(), quick=True)
        assert [r["n"] for r in rows] == [1, 2]
    finally:
        database.close()


async def test_a_quick_write_waits_on_the_worker_while_another_connection_writes(tmp_path: Path) -> None:
    database = SqliteDatabase(tmp_path / "q.db", SCHEMA)
    other = sqlite3.connect(tmp_path / "q.db", isolation_level=None)
    try:
        await database.run(lambda db: db.execute("SELECT 1").fetchone(), quick=True)  # the quick connection exists
        other.execute("BEGIN IMMEDIATE")  # another process's write in progress
        other.execute("INSERT INTO items (n) VALUES (1)")
        write = asyncio.create_task(database.transaction(insert(2), quick=True))
        await asyncio.sleep(0.2)
        assert not write.done()  # waiting for the lock, on the worker: the loop kept running this test
        other.execute("COMMIT")
        assert await asyncio.wait_for(write, 10) != threading.current_thread().name
        rows = await database.run(lambda db: db.execute("SELECT n FROM items ORDER BY n").fetchall(), quick=True)
        assert [r["n"] for r in rows] == [1, 2]  # both, each once
    finally:
        other.close()
        database.close()


async def test_a_quick_call_that_fails_otherwise_raises_and_leaves_nothing(tmp_path: Path) -> None:
    database = SqliteDatabase(tmp_path / "q.db", SCHEMA)
    try:
        await database.transaction(insert(1), quick=True)

        def twice(db: sqlite3.Connection) -> None:
            db.execute("INSERT INTO items (n) VALUES (2)")
            db.execute("INSERT INTO items (n) VALUES (1)")  # primary key taken

        with pytest.raises(sqlite3.IntegrityError):
            await database.transaction(twice, quick=True)
        rows = await database.run(lambda db: db.execute("SELECT n FROM items").fetchall())
        assert [r["n"] for r in rows] == [1]  # the transaction's first insert was rolled back
    finally:
        database.close()


async def test_quick_commits_are_checkpointed_into_the_database_file_by_the_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(state, "QUICK_CHECKPOINT_EVERY", 5)
    path = tmp_path / "q.db"
    database = SqliteDatabase(path, SCHEMA)

    def in_file() -> int:  # the rows in the database file itself: immutable reads ignore the WAL
        with contextlib.closing(sqlite3.connect(f"file:{path}?immutable=1", uri=True)) as db:
            return int(db.execute("SELECT count(*) FROM items").fetchone()[0])

    try:
        await database.run(lambda db: db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone())  # the schema
        for n in range(4):
            await database.transaction(insert(n), quick=True)
        await asyncio.sleep(0.1)
        assert in_file() == 0  # the quick connection never checkpoints
        await database.transaction(insert(4), quick=True)  # the fifth change: a checkpoint on the worker
        for _ in range(100):
            if in_file() == 5:
                break
            await asyncio.sleep(0.05)
        assert in_file() == 5
    finally:
        database.close()
