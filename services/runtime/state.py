"""Where state lives, chosen by URL, and the SQLite base that every store port's embedded adapter uses.

A store port is an async `Protocol` in the service's own module (`WorkflowStore`, `RunStore`, ...); its SQLite
adapter wraps a `SqliteDatabase`, and later adapters (DynamoDB) sit beside it. `open_*` functions in each service
pick the adapter from `StateUrl.scheme`."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import parse_qs, urlsplit

T = TypeVar("T")
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


class SqliteDatabase:
    """One connection used from one worker thread: store calls never block the event loop and never overlap.

    WAL and a busy timeout let several processes (instances of a service) share the file."""

    def __init__(self, path: Path, schema: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"sqlite-{path.stem}")
        self._db = sqlite3.connect(path, timeout=10.0, isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        # In WAL mode NORMAL syncs at checkpoints, not at every commit: a killed process loses nothing committed
        # (only a power cut can lose the last commits), and each write costs no fsync.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=10000")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(schema)

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Runs `work` on the connection in the worker thread (autocommit: each statement commits)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, work, self._db)

    async def transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
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

        return await self.run(atomic)

    async def ping(self) -> None:
        await self.run(lambda db: db.execute("SELECT 1").fetchone())

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self._db.close()
