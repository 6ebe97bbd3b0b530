"""Workflows and their event log in SQLite; each event and the state change it records are one transaction."""

from __future__ import annotations

import builtins
import datetime as dt
import json
import sqlite3
import uuid
from dataclasses import dataclass, field
from typing import Any

from services.runtime.errors import NotFound

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
    last_sequence INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS workflows_by_state ON workflows (state, create_time);
CREATE TABLE IF NOT EXISTS workflow_events (
    position INTEGER PRIMARY KEY AUTOINCREMENT,
    workflow_id TEXT NOT NULL REFERENCES workflows (id),
    sequence INTEGER NOT NULL,
    type TEXT NOT NULL,
    step TEXT NOT NULL,
    state TEXT NOT NULL,
    progress INTEGER NOT NULL,
    message TEXT NOT NULL,
    create_time TEXT NOT NULL,
    UNIQUE (workflow_id, sequence)
);
"""

TERMINAL = frozenset({"succeeded", "failed", "cancelled"})


@dataclass
class Step:
    name: str
    state: str = "pending"
    started: dt.datetime | None = None
    ended: dt.datetime | None = None
    error: str = ""


@dataclass
class Workflow:
    id: str
    type: str
    parameters: dict[str, Any]
    state: str
    steps: list[Step]
    created: dt.datetime
    updated: dt.datetime
    progress: int = 0
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None  # {"code": int, "message": str, "reason": str}
    last_sequence: int = 0

    @property
    def done(self) -> bool:
        return self.state in TERMINAL


@dataclass(frozen=True)
class Event:
    workflow_id: str
    sequence: int
    type: str
    step: str
    state: str
    progress: int
    message: str
    created: dt.datetime
    position: int = field(default=0, compare=False)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


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
    steps = [
        Step(s["name"], s["state"], _time(s["started"]), _time(s["ended"]), s["error"]) for s in json.loads(row["steps"])
    ]
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
    )


def _event(row: sqlite3.Row) -> Event:
    return Event(
        row["workflow_id"], row["sequence"], row["type"], row["step"], row["state"], row["progress"],
        row["message"], dt.datetime.fromisoformat(row["create_time"]), row["position"],
    )


class WorkflowStore:
    def __init__(self, connection: sqlite3.Connection) -> None:
        self._db = connection

    def create(self, type_name: str, parameters: dict[str, Any], steps: list[str], request_id: str) -> tuple[Workflow, bool]:
        """Saves a new workflow with its CREATED event; returns (workflow, created) — an earlier one for a reused request id."""
        if request_id:
            row = self._db.execute("SELECT * FROM workflows WHERE request_id = ?", (request_id,)).fetchone()
            if row is not None:
                return _workflow(row), False
        now = _now()
        workflow = Workflow(uuid.uuid4().hex, type_name, parameters, "pending", [Step(s) for s in steps], now, now)
        try:
            self._insert(workflow, request_id)
        except sqlite3.IntegrityError:
            # Another caller with the same request id won the race; theirs is the workflow.
            row = self._db.execute("SELECT * FROM workflows WHERE request_id = ?", (request_id,)).fetchone()
            if row is None:
                raise
            return _workflow(row), False
        return workflow, True

    def _insert(self, workflow: Workflow, request_id: str) -> None:
        now = workflow.created
        type_name = workflow.type
        with self._transaction():
            self._db.execute(
                "INSERT INTO workflows (id, type, parameters, state, steps, request_id, create_time, update_time) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (workflow.id, type_name, json.dumps(workflow.parameters), "pending", _steps_json(workflow.steps),
                 request_id or None, now.isoformat(), now.isoformat()),
            )
            self._append(workflow, "created", "", f"{type_name} workflow created")

    def get(self, workflow_id: str) -> Workflow:
        row = self._db.execute("SELECT * FROM workflows WHERE id = ?", (workflow_id,)).fetchone()
        if row is None:
            raise NotFound(f"workflow {workflow_id!r} does not exist", reason="WORKFLOW_NOT_FOUND",
                           metadata={"workflow": workflow_id})
        return _workflow(row)

    def list(self, state: str, offset: int, limit: int) -> tuple[list[Workflow], bool]:
        rows = self._db.execute(
            "SELECT * FROM workflows WHERE (? = '' OR state = ?) ORDER BY create_time DESC, id LIMIT ? OFFSET ?",
            (state, state, limit + 1, offset),
        ).fetchall()
        return [_workflow(r) for r in rows[:limit]], len(rows) > limit

    # Below, `list` is the method above: annotations spell the type as builtins.list.
    def unfinished(self) -> builtins.list[Workflow]:
        rows = self._db.execute("SELECT * FROM workflows WHERE state IN ('pending', 'running') ORDER BY create_time")
        return [_workflow(r) for r in rows]

    def record(self, workflow: Workflow, event_type: str, step: str, message: str) -> Event:
        """Writes the workflow's new state and the event describing it, atomically."""
        workflow.updated = _now()
        with self._transaction():
            self._db.execute(
                "UPDATE workflows SET state = ?, progress = ?, steps = ?, result = ?, error = ?, update_time = ? "
                "WHERE id = ?",
                (workflow.state, workflow.progress, _steps_json(workflow.steps),
                 json.dumps(workflow.result) if workflow.result is not None else None,
                 json.dumps(workflow.error) if workflow.error is not None else None,
                 workflow.updated.isoformat(), workflow.id),
            )
            return self._append(workflow, event_type, step, message)

    def events_after(self, workflow_id: str, sequence: int) -> builtins.list[Event]:
        rows = self._db.execute(
            "SELECT * FROM workflow_events WHERE workflow_id = ? AND sequence > ? ORDER BY sequence",
            (workflow_id, sequence),
        )
        return [_event(r) for r in rows]

    def events_after_position(self, position: int) -> builtins.list[Event]:
        rows = self._db.execute("SELECT * FROM workflow_events WHERE position > ? ORDER BY position LIMIT 1000", (position,))
        return [_event(r) for r in rows]

    def last_position(self) -> int:
        return self._db.execute("SELECT COALESCE(MAX(position), 0) FROM workflow_events").fetchone()[0]

    def _append(self, workflow: Workflow, event_type: str, step: str, message: str) -> Event:
        sequence = self._db.execute(
            "UPDATE workflows SET last_sequence = last_sequence + 1 WHERE id = ? RETURNING last_sequence", (workflow.id,)
        ).fetchone()[0]
        workflow.last_sequence = sequence
        now = _now()
        cursor = self._db.execute(
            "INSERT INTO workflow_events (workflow_id, sequence, type, step, state, progress, message, create_time) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (workflow.id, sequence, event_type, step, workflow.state, workflow.progress, message, now.isoformat()),
        )
        return Event(workflow.id, sequence, event_type, step, workflow.state, workflow.progress, message, now,
                     cursor.lastrowid or 0)

    def _transaction(self) -> sqlite3.Connection:
        # isolation_level=None puts sqlite3 in autocommit; `with` on a connection only commits or rolls back.
        self._db.execute("BEGIN IMMEDIATE")
        return self._db
