"""The embedded WorkflowStore: SQLite (WAL) in the data folder, shared safely by several processes."""

from __future__ import annotations

import builtins
import datetime as dt
import json
import sqlite3
import uuid
from typing import Any

from services.runtime.clock import utcnow
from services.runtime.identity import ANONYMOUS, Identity, identity_of_text, identity_text
from services.runtime.state import SqliteDatabase
from services.workflows.store import Draft, Event, LeaseState, RunStart, Step, Workflow, not_found, opening_events

SCHEMA = """
CREATE TABLE IF NOT EXISTS workflows (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    parameters TEXT NOT NULL,
    state TEXT NOT NULL,
    progress INTEGER NOT NULL DEFAULT 0,
    steps TEXT NOT NULL,
    result TEXT,
    error TEXT,
    request_id TEXT UNIQUE,
    create_time TEXT NOT NULL,
    update_time TEXT NOT NULL,
    last_sequence INTEGER NOT NULL DEFAULT 0,
    traceparent TEXT NOT NULL DEFAULT '',
    creator TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS workflows_by_state ON workflows (state, create_time);
CREATE INDEX IF NOT EXISTS workflows_by_update ON workflows (update_time);
CREATE TABLE IF NOT EXISTS workflow_event_log (
    workflow_id TEXT NOT NULL REFERENCES workflows (id),
    sequence INTEGER NOT NULL,
    type TEXT NOT NULL,
    step TEXT NOT NULL,
    state TEXT NOT NULL,
    progress INTEGER NOT NULL,
    message TEXT NOT NULL,
    create_time TEXT NOT NULL,
    steps_done INTEGER NOT NULL DEFAULT 0,
    steps_total INTEGER NOT NULL DEFAULT 0,
    items_done INTEGER NOT NULL DEFAULT 0,
    items_total INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (workflow_id, sequence)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS workflow_runs (
    workflow_id TEXT PRIMARY KEY REFERENCES workflows (id),
    owner TEXT,
    lease_expires REAL,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    checkpoints_pruned INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
"""
UNFINISHED = "('pending', 'running')"
ENDED = "('succeeded', 'failed', 'cancelled')"


def _time(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


def _steps_json(steps: list[Step]) -> str:
    return json.dumps(
        [
            {"name": s.name, "state": s.state, "error": s.error,
             "started": s.started.isoformat() if s.started else None, "ended": s.ended.isoformat() if s.ended else None}
            for s in steps
        ]
    )


def _workflow(row: sqlite3.Row) -> Workflow:
    steps = [Step(s["name"], s["state"], _time(s["started"]), _time(s["ended"]), s["error"]) for s in json.loads(row["steps"])]
    return Workflow(
        id=row["id"],
        type=row["type"],
        parameters=json.loads(row["parameters"]),
        state=row["state"],
        steps=steps,
        created=dt.datetime.fromisoformat(row["create_time"]),
        updated=dt.datetime.fromisoformat(row["update_time"]),
        progress=row["progress"],
        result=json.loads(row["result"]) if row["result"] else None,
        error=json.loads(row["error"]) if row["error"] else None,
        last_sequence=row["last_sequence"],
        traceparent=row["traceparent"],
        creator=identity_of_text(row["creator"]),
    )


def _event(row: sqlite3.Row) -> Event:
    return Event(
        row["workflow_id"], row["sequence"], row["type"], row["step"], row["state"], row["progress"],
        row["message"], dt.datetime.fromisoformat(row["create_time"]),
        row["steps_done"], row["steps_total"], row["items_done"], row["items_total"],
    )


def _insert_event(db: sqlite3.Connection, event: Event) -> None:
    db.execute(
        "INSERT INTO workflow_event_log (workflow_id, sequence, type, step, state, progress, message, create_time, "
        "steps_done, steps_total, items_done, items_total) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (event.workflow_id, event.sequence, event.type, event.step, event.state, event.progress, event.message,
         event.created.isoformat(), event.steps_done, event.steps_total, event.items_done, event.items_total),
    )


# Columns added after the first release: a data folder made by an older version gets them at start-up.
_COUNT = "INTEGER NOT NULL DEFAULT 0"
_ADDED_COLUMNS = {
    "workflows": {"traceparent": "TEXT NOT NULL DEFAULT ''", "creator": "TEXT NOT NULL DEFAULT ''"},
    "workflow_event_log": {"steps_done": _COUNT, "steps_total": _COUNT, "items_done": _COUNT, "items_total": _COUNT},
}


def _migrate(db: sqlite3.Connection) -> None:
    for table, columns in _ADDED_COLUMNS.items():
        present = {row["name"] for row in db.execute(f"PRAGMA table_info({table})")}
        for column, kind in columns.items():
            if column not in present:
                db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")


class SqliteWorkflowStore:
    def __init__(self, database: SqliteDatabase) -> None:
        self._db = database

    @classmethod
    async def open(cls, database: SqliteDatabase) -> SqliteWorkflowStore:
        """The store over a database file that may have been made by an older version (columns added)."""
        await database.transaction(_migrate)
        return cls(database)

    async def create(
        self, type_name: str, parameters: dict[str, Any], steps: builtins.list[str], request_id: str,
        traceparent: str = "", start: RunStart | None = None, creator: Identity = ANONYMOUS,
    ) -> tuple[Workflow, bool]:
        now = utcnow()
        workflow = Workflow(uuid.uuid4().hex, type_name, parameters, "pending", [Step(s) for s in steps], now, now,
                            traceparent=traceparent, creator=creator)
        events = opening_events(workflow, start)
        workflow.state, workflow.last_sequence = events[-1].state, len(events)

        def insert(db: sqlite3.Connection) -> tuple[Workflow, bool]:
            if request_id:
                row = db.execute("SELECT * FROM workflows WHERE request_id = ?", (request_id,)).fetchone()
                if row is not None:
                    return _workflow(row), False
            db.execute(
                "INSERT INTO workflows (id, type, parameters, state, steps, request_id, create_time, update_time, "
                "traceparent, creator, last_sequence) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (workflow.id, type_name, json.dumps(parameters), workflow.state, _steps_json(workflow.steps),
                 request_id or None, now.isoformat(), now.isoformat(), traceparent, identity_text(creator),
                 workflow.last_sequence),
            )
            for event in events:
                _insert_event(db, event)
            if start is not None:
                db.execute("INSERT INTO workflow_runs (workflow_id, owner, lease_expires) VALUES (?, ?, ?)",
                           (workflow.id, start.owner, start.until.timestamp()))
            return workflow, True

        # BEGIN IMMEDIATE serialises writers across processes, so two callers with one request id get one workflow.
        return await self._db.transaction(insert, quick=True)

    async def get(self, workflow_id: str) -> Workflow:
        row = await self._db.run(lambda db: db.execute("SELECT * FROM workflows WHERE id = ?", (workflow_id,)).fetchone(),
                                 quick=True)
        if row is None:
            raise not_found(workflow_id)
        return _workflow(row)

    async def list(self, state: str, offset: int, limit: int) -> tuple[builtins.list[Workflow], bool]:
        rows = await self._db.run(
            lambda db: db.execute(
                "SELECT * FROM workflows WHERE (? = '' OR state = ?) ORDER BY create_time DESC, id LIMIT ? OFFSET ?",
                (state, state, limit + 1, offset),
            ).fetchall()
        )
        return [_workflow(r) for r in rows[:limit]], len(rows) > limit

    async def unfinished(self) -> builtins.list[Workflow]:
        rows = await self._db.run(
            lambda db: db.execute(
                "SELECT * FROM workflows WHERE state IN ('pending', 'running') ORDER BY create_time"
            ).fetchall()
        )
        return [_workflow(r) for r in rows]

    async def record(
        self, workflow: Workflow, event_type: str, step: str, message: str, items_done: int = 0, items_total: int = 0
    ) -> Event:
        return (await self.record_all(workflow, [Draft.of(workflow, event_type, step, message, items_done, items_total)]))[0]

    async def record_all(self, workflow: Workflow, drafts: builtins.list[Draft]) -> builtins.list[Event]:
        workflow.updated = utcnow()
        values = (workflow.state, workflow.progress, _steps_json(workflow.steps),
                  json.dumps(workflow.result) if workflow.result is not None else None,
                  json.dumps(workflow.error) if workflow.error is not None else None,
                  workflow.updated.isoformat(), len(drafts), workflow.id)

        def write(db: sqlite3.Connection) -> builtins.list[Event]:
            # One statement changes the row and takes the sequences; then the events.
            row = db.execute(
                "UPDATE workflows SET state = ?, progress = ?, steps = ?, result = ?, error = ?, update_time = ?, "
                "last_sequence = last_sequence + ? WHERE id = ? RETURNING last_sequence",
                values,
            ).fetchone()
            if row is None:
                raise not_found(workflow.id)
            first = row[0] - len(drafts) + 1
            events = [draft.event(workflow.id, first + n, workflow.updated) for n, draft in enumerate(drafts)]
            for event in events:
                _insert_event(db, event)
            workflow.last_sequence = row[0]
            return events

        return await self._db.transaction(write, quick=True)

    async def events_after(self, workflow_id: str, sequence: int) -> builtins.list[Event]:
        rows = await self._db.run(
            lambda db: db.execute(
                "SELECT * FROM workflow_event_log WHERE workflow_id = ? AND sequence > ? ORDER BY sequence",
                (workflow_id, sequence),
            ).fetchall(),
            quick=True,
        )
        return [_event(r) for r in rows]

    async def changed_since(self, moment: dt.datetime) -> builtins.list[tuple[str, int]]:
        rows = await self._db.run(
            lambda db: db.execute(
                "SELECT id, last_sequence FROM workflows WHERE update_time >= ? ORDER BY update_time", (moment.isoformat(),)
            ).fetchall()
        )
        return [(r["id"], r["last_sequence"]) for r in rows]

    async def claim(self, workflow_id: str, owner: str, now: dt.datetime, until: dt.datetime) -> bool:
        def take(db: sqlite3.Connection) -> bool:
            # One conditional upsert: a free, expired or own lease is taken; a live lease of another owner is not.
            return db.execute(
                "INSERT INTO workflow_runs (workflow_id, owner, lease_expires) "
                f"SELECT id, ?, ? FROM workflows WHERE id = ? AND state IN {UNFINISHED} "
                "ON CONFLICT (workflow_id) DO UPDATE SET owner = excluded.owner, lease_expires = excluded.lease_expires "
                "WHERE workflow_runs.owner IS NULL OR workflow_runs.owner = excluded.owner "
                "OR workflow_runs.lease_expires < ?",
                (owner, until.timestamp(), workflow_id, now.timestamp()),
            ).rowcount == 1

        return await self._db.transaction(take, quick=True)

    async def renew(self, workflow_id: str, owner: str, until: dt.datetime) -> LeaseState:
        row = await self._db.transaction(
            lambda db: db.execute(
                "UPDATE workflow_runs SET lease_expires = ? WHERE workflow_id = ? AND owner = ? "
                f"AND EXISTS (SELECT 1 FROM workflows WHERE id = ? AND state IN {UNFINISHED}) RETURNING cancel_requested",
                (until.timestamp(), workflow_id, owner, workflow_id),
            ).fetchone(),
            quick=True,
        )
        if row is None:
            return "lost"
        return "cancel_requested" if row[0] else "held"

    async def release(self, workflow_id: str, owner: str) -> None:
        await self._db.run(
            lambda db: db.execute(
                "UPDATE workflow_runs SET owner = NULL, lease_expires = NULL WHERE workflow_id = ? AND owner = ?",
                (workflow_id, owner),
            ),
            quick=True,
        )

    async def claimable(self, now: dt.datetime) -> builtins.list[Workflow]:
        rows = await self._db.run(
            lambda db: db.execute(
                "SELECT w.* FROM workflows w LEFT JOIN workflow_runs r ON r.workflow_id = w.id "
                f"WHERE w.state IN {UNFINISHED} AND (r.owner IS NULL OR r.lease_expires < ?) ORDER BY w.create_time",
                (now.timestamp(),),
            ).fetchall()
        )
        return [_workflow(r) for r in rows]

    async def request_cancel(self, workflow_id: str) -> None:
        def mark(db: sqlite3.Connection) -> None:
            if db.execute("SELECT 1 FROM workflows WHERE id = ?", (workflow_id,)).fetchone() is None:
                raise not_found(workflow_id)
            db.execute(
                "INSERT INTO workflow_runs (workflow_id, cancel_requested) VALUES (?, 1) "
                "ON CONFLICT (workflow_id) DO UPDATE SET cancel_requested = 1",
                (workflow_id,),
            )

        await self._db.transaction(mark)

    async def prunable(self, ended_before: dt.datetime) -> builtins.list[str]:
        rows = await self._db.run(
            lambda db: db.execute(
                "SELECT w.id FROM workflows w LEFT JOIN workflow_runs r ON r.workflow_id = w.id "
                f"WHERE w.state IN {ENDED} AND w.update_time < ? AND COALESCE(r.checkpoints_pruned, 0) = 0 "
                "ORDER BY w.update_time",
                (ended_before.isoformat(),),
            ).fetchall()
        )
        return [r["id"] for r in rows]

    async def mark_pruned(self, workflow_id: str) -> None:
        await self._db.run(
            lambda db: db.execute(
                "INSERT INTO workflow_runs (workflow_id, checkpoints_pruned) VALUES (?, 1) "
                "ON CONFLICT (workflow_id) DO UPDATE SET checkpoints_pruned = 1",
                (workflow_id,),
            )
        )

    async def ping(self) -> None:
        await self._db.ping()
