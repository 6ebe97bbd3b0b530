"""Where state lives, chosen by URL, and the SQLite base that every store port's embedded adapter uses.

A store port is an async `Protocol` in the service's own module (`WorkflowStore`, `RunStore`, ...); its SQLite
adapter wraps a `SqliteDatabase`, and later adapters (DynamoDB) sit beside it. `open_*` functions in each service
pick the adapter from `StateUrl.scheme`."""

from __future__ import annotations

import asyncio
import fcntl
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import parse_qs, urlsplit

T = TypeVar("T")
log = logging.getLogger("mcpmesh.state")
SCHEMES = ("sqlite", "dynamodb")


@dataclass(frozen=True)
class StateUrl:
    """`sqlite:///relative/file.db`, `sqlite:////absolute/file.db`, or `dynamodb://prefix?endpoint=URL&region=R`."""

    scheme: str
    path: Path | None = None  # sqlite: the database file
    table_prefix: str = ""  # dynamodb: prefix of every table name
    endpoint: str = ""  # dynamodb: endpoint URL (DynamoDB Local); empty means AWS
    region: str = ""

    @classmethod
    def parse(cls, raw: str) -> StateUrl:
        parts = urlsplit(raw)
        if parts.scheme == "sqlite":
            if parts.netloc or not parts.path.lstrip("/"):
                raise ValueError("expected sqlite:///FILE (relative) or sqlite:////FILE (absolute)")
            return cls("sqlite", path=Path(parts.path[1:]))
        if parts.scheme == "dynamodb":
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            prefix = parts.netloc or "mcpmesh"
            if not prefix.replace("-", "").replace("_", "").replace(".", "").isalnum():
                raise ValueError("table prefix may hold letters, digits, '-', '_' and '.'")
            return cls("dynamodb", table_prefix=prefix, endpoint=query.get("endpoint", ""), region=query.get("region", ""))
        raise ValueError(f"unknown state store scheme {parts.scheme!r}; expected one of {', '.join(SCHEMES)}")

    @classmethod
    def of_service(cls, state_url: str, data_dir: Path, service: str) -> StateUrl:
        """The configured URL, or by default one SQLite file per service in the data folder."""
        if not state_url:
            return cls("sqlite", path=data_dir / f"{service}.db")
        return cls.parse(state_url)


@contextmanager
def setup_lock(path: Path) -> Iterator[None]:
    """Holds an exclusive lock on `path` + ".setup-lock" (a file beside it) while the database at `path` is created,
    switched to WAL or migrated; other processes (instances of a service starting at once) wait for it.

    Without it two instances that open a new file together both try to switch it to WAL: SQLite sees one of them
    holding a read lock while wanting a write lock and, to avoid a deadlock, answers it "database is locked" at once,
    whatever the busy timeout."""
    with open(path.with_name(path.name + ".setup-lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield  # closing the file releases the lock


@asynccontextmanager
async def setup_lock_async(path: Path) -> AsyncIterator[None]:
    """`setup_lock` for set-up that awaits: the lock is waited for in a thread, so the event loop goes on (and a
    holder in the same process can finish)."""
    with ExitStack() as held:
        await asyncio.to_thread(held.enter_context, setup_lock(path))
        yield


# Quick commits between two WAL checkpoints, which the worker thread makes (the quick connection never does: a
# checkpoint writes the database file and syncs it, too long for the event loop).
QUICK_CHECKPOINT_EVERY = 200
BUSY_CODES = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


class SqliteDatabase:
    """One connection used from one worker thread: store calls never wait on the event loop and never overlap.

    WAL and a busy timeout let several processes (instances of a service) share the file.

    A call marked `quick` (one statement, or one short transaction, of a hot path) runs on the event loop instead,
    on a second connection that never waits: when another connection holds the write lock it gets SQLITE_BUSY at
    once, and the call goes to the worker thread like the others. A free database costs such a call tens of
    microseconds; the hop to the thread and back costs more than that."""

    def __init__(self, path: Path, schema: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"sqlite-{path.stem}")
        with setup_lock(path):
            self._db = self._connect(path, timeout=10.0)
            self._db.execute("PRAGMA busy_timeout=10000")
            self._db.executescript(schema)
        self._quick: sqlite3.Connection | None = None  # made on the first quick call
        self._quick_changes = 0  # the quick connection's total_changes at the last checkpoint
        self._checkpoint: Future[object] | None = None  # the worker's last checkpoint (a thread future: no loop tie)

    @staticmethod
    def _connect(path: Path, timeout: float) -> sqlite3.Connection:
        db = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA journal_mode=WAL")
        # In WAL mode NORMAL syncs at checkpoints, not at every commit: a killed process loses nothing committed
        # (only a power cut can lose the last commits), and each write costs no fsync.
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA foreign_keys=ON")
        return db

    async def run(self, work: Callable[[sqlite3.Connection], T], *, quick: bool = False) -> T:
        """Runs `work` on the connection in the worker thread (autocommit: each statement commits); `quick` work
        (one statement) on the event loop when no other connection holds the write lock."""
        if quick:
            try:
                return self._run_quick(work)
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode & 0xFF not in BUSY_CODES:
                    raise
                # Nothing was written (one statement, or a transaction rolled back): the worker waits its turn.
        return await asyncio.get_running_loop().run_in_executor(self._executor, work, self._db)

    async def transaction(self, work: Callable[[sqlite3.Connection], T], *, quick: bool = False) -> T:
        """Runs `work` inside BEGIN IMMEDIATE ... COMMIT; any exception rolls the whole of it back."""

        def atomic(db: sqlite3.Connection) -> T:
            db.execute("BEGIN IMMEDIATE")
            try:
                result = work(db)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            return result

        return await self.run(atomic, quick=quick)

    def _run_quick(self, work: Callable[[sqlite3.Connection], T]) -> T:
        if self._quick is None:
            self._quick = self._connect(self.path, timeout=0.0)  # SQLITE_BUSY at once, never a wait on the loop
            self._quick.execute("PRAGMA wal_autocheckpoint=0")
        result = work(self._quick)
        changed = self._quick.total_changes - self._quick_changes
        if changed >= QUICK_CHECKPOINT_EVERY and (self._checkpoint is None or self._checkpoint.done()):
            self._quick_changes = self._quick.total_changes
            self._checkpoint = self._executor.submit(self._wal_checkpoint)
        return result

    def _wal_checkpoint(self) -> None:
        """In the worker thread: copies what the WAL holds into the database file, without waiting for readers."""
        try:
            self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as exc:  # the next QUICK_CHECKPOINT_EVERY quick changes ask again
            log.warning("WAL checkpoint failed", extra={"database": str(self.path), "error": str(exc)})

    async def ping(self) -> None:
        await self.run(lambda db: db.execute("SELECT 1").fetchone())

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        if self._quick is not None:
            self._quick.close()
        self._db.close()
