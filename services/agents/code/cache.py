"""Per-file results kept by content hash, so a re-run on an unchanged tree reads instead of analysing."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

from services.agents.code.python_file import FunctionMetrics
from services.agents.code.worker import FileOutcome
from services.agents.runs import finding_from_dict, finding_to_dict
from services.runtime.state import setup_lock


class FileCache(Protocol):
    def get_many(self, keys: list[str]) -> dict[str, FileOutcome]: ...

    def put_many(self, outcomes: dict[str, FileOutcome]) -> None: ...


def dump(outcome: FileOutcome) -> str:
    body: dict[str, Any] = asdict(outcome)
    body["findings"] = [finding_to_dict(f) for f in outcome.findings]
    return json.dumps(body, separators=(",", ":"))


def load(text: str) -> FileOutcome:
    body = json.loads(text)
    body["findings"] = [finding_from_dict(f) for f in body["findings"]]
    body["functions"] = [FunctionMetrics(**f) for f in body["functions"]]
    return FileOutcome(**body)


class MemoryFileCache:
    def __init__(self) -> None:
        self._items: dict[str, str] = {}
        self._lock = threading.Lock()

    def get_many(self, keys: list[str]) -> dict[str, FileOutcome]:
        with self._lock:
            return {k: load(self._items[k]) for k in keys if k in self._items}

    def put_many(self, outcomes: dict[str, FileOutcome]) -> None:
        with self._lock:
            self._items.update({k: dump(v) for k, v in outcomes.items()})


class SqliteFileCache:
    """A file in the data folder; one connection per call, since runs use it from their own worker threads."""

    SCHEMA = "CREATE TABLE IF NOT EXISTS file_results (key TEXT PRIMARY KEY, body TEXT NOT NULL, used REAL NOT NULL)"

    def __init__(self, path: Path, max_entries: int = 500_000) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        self._max = max_entries
        with setup_lock(path), self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(self.SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self._path, timeout=10.0)

    def get_many(self, keys: list[str]) -> dict[str, FileOutcome]:
        found: dict[str, FileOutcome] = {}
        db = self._connect()
        try:
            for i in range(0, len(keys), 500):
                chunk = keys[i : i + 500]
                marks = ",".join("?" * len(chunk))
                for key, body in db.execute(f"SELECT key, body FROM file_results WHERE key IN ({marks})", chunk):  # nosec B608: only "?" marks
                    found[key] = load(body)
        finally:
            db.close()
        return found

    def put_many(self, outcomes: dict[str, FileOutcome]) -> None:
        if not outcomes:
            return
        now = time.time()
        db = self._connect()
        try:
            with db:
                db.executemany(
                    "INSERT OR REPLACE INTO file_results (key, body, used) VALUES (?, ?, ?)",
                    ((k, dump(v), now) for k, v in outcomes.items()),
                )
                count = db.execute("SELECT COUNT(*) FROM file_results").fetchone()[0]
                if count > self._max:  # forget the least recently written results
                    db.execute(
                        "DELETE FROM file_results WHERE key IN (SELECT key FROM file_results ORDER BY used LIMIT ?)",
                        (count - self._max,),
                    )
        finally:
            db.close()
