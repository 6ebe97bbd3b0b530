"""The SQLite adapter of the registry store: registrations and idempotency records in tools.db."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from typing import Any

from services.runtime.clock import utcnow
from services.runtime.state import SqliteDatabase
from services.tools.registry_store import IDEMPOTENCY_RETENTION, IdempotencyRecord, Registration

SCHEMA = """
CREATE TABLE IF NOT EXISTS tool_registrations (
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    body TEXT NOT NULL,
    update_time TEXT NOT NULL,
    PRIMARY KEY (kind, name)
);
CREATE TABLE IF NOT EXISTS tool_registry_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
INSERT OR IGNORE INTO tool_registry_version (id, version) VALUES (1, 0);
CREATE TABLE IF NOT EXISTS tool_idempotency (
    caller TEXT NOT NULL,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    result TEXT NOT NULL,
    duration_ms INTEGER NOT NULL,
    create_time TEXT NOT NULL,
    PRIMARY KEY (caller, key)
);
CREATE INDEX IF NOT EXISTS tool_idempotency_by_time ON tool_idempotency (create_time);
"""


class SqliteRegistryStore:
    def __init__(self, database: SqliteDatabase, retention: dt.timedelta = IDEMPOTENCY_RETENTION) -> None:
        self._db = database
        self._retention = retention

    async def put(self, kind: str, name: str, body: dict[str, Any]) -> Registration:
        now = utcnow()
        text = json.dumps(body, sort_keys=True)

        def work(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT INTO tool_registrations (kind, name, body, update_time) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (kind, name) DO UPDATE SET body = excluded.body, update_time = excluded.update_time",
                (kind, name, text, now.isoformat()),
            )
            db.execute("UPDATE tool_registry_version SET version = version + 1 WHERE id = 1")

        await self._db.transaction(work)
        return Registration(kind, name, json.loads(text), now)

    async def delete(self, kind: str, name: str) -> bool:
        def work(db: sqlite3.Connection) -> bool:
            deleted = db.execute("DELETE FROM tool_registrations WHERE kind = ? AND name = ?", (kind, name)).rowcount
            if deleted:
                db.execute("UPDATE tool_registry_version SET version = version + 1 WHERE id = 1")
            return bool(deleted)

        return await self._db.transaction(work)

    async def list(self, kind: str) -> list[Registration]:
        rows = await self._db.run(
            lambda db: db.execute("SELECT * FROM tool_registrations WHERE kind = ? ORDER BY name", (kind,)).fetchall()
        )
        return [
            Registration(r["kind"], r["name"], json.loads(r["body"]), dt.datetime.fromisoformat(r["update_time"]))
            for r in rows
        ]

    async def version(self) -> int:
        row = await self._db.run(lambda db: db.execute("SELECT version FROM tool_registry_version").fetchone())
        return int(row["version"])

    async def remember(self, record: IdempotencyRecord) -> IdempotencyRecord:
        expired = (utcnow() - self._retention).isoformat()

        def work(db: sqlite3.Connection) -> sqlite3.Row:
            db.execute("DELETE FROM tool_idempotency WHERE create_time < ?", (expired,))
            db.execute(
                "INSERT OR IGNORE INTO tool_idempotency (caller, key, request_hash, result, duration_ms, create_time) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    record.caller, record.key, record.request_hash, json.dumps(record.result),
                    record.duration_ms, record.created.isoformat(),
                ),
            )
            return db.execute(
                "SELECT * FROM tool_idempotency WHERE caller = ? AND key = ?", (record.caller, record.key)
            ).fetchone()

        return _record(await self._db.transaction(work))

    async def recall(self, caller: str, key: str) -> IdempotencyRecord | None:
        expired = (utcnow() - self._retention).isoformat()
        row = await self._db.run(
            lambda db: db.execute(
                "SELECT * FROM tool_idempotency WHERE caller = ? AND key = ? AND create_time >= ?", (caller, key, expired)
            ).fetchone()
        )
        return None if row is None else _record(row)

    async def ping(self) -> None:
        await self._db.ping()


def _record(row: sqlite3.Row) -> IdempotencyRecord:
    return IdempotencyRecord(
        caller=row["caller"], key=row["key"], request_hash=row["request_hash"], result=json.loads(row["result"]),
        duration_ms=row["duration_ms"], created=dt.datetime.fromisoformat(row["create_time"]),
    )
