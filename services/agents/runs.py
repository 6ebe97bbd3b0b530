"""Agent runs: the domain record and its SQLite store, keyed also by idempotency key."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from dataclasses import asdict, dataclass, field
from typing import Any

from services.agents.code_analyzer import Finding
from services.runtime.errors import NotFound

SCHEMA = """
CREATE TABLE IF NOT EXISTS agent_runs (
    id TEXT PRIMARY KEY,
    idempotency_key TEXT UNIQUE,
    body TEXT NOT NULL
);
"""


@dataclass
class AgentRun:
    id: str
    agent: str
    input: dict[str, Any]
    state: str  # "running", "succeeded" or "failed"
    created: dt.datetime
    findings: list[Finding] = field(default_factory=list)
    artifacts: list[dict[str, str]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    usage: dict[str, int] = field(default_factory=dict)
    llm_status: str = "not_configured"
    summary: str = ""
    error: str = ""
    ended: dt.datetime | None = None
    truncated: bool = False


def _dump(run: AgentRun) -> str:
    body = asdict(run)
    body["created"] = run.created.isoformat()
    body["ended"] = run.ended.isoformat() if run.ended else None
    return json.dumps(body)


def _load(text: str) -> AgentRun:
    body = json.loads(text)
    body["created"] = dt.datetime.fromisoformat(body["created"])
    body["ended"] = dt.datetime.fromisoformat(body["ended"]) if body["ended"] else None
    body["findings"] = [Finding(**f) for f in body["findings"]]
    return AgentRun(**body)


class RunStore:
    def __init__(self, connection: sqlite3.Connection) -> None:
        self._db = connection

    def save(self, run: AgentRun, idempotency_key: str = "") -> None:
        self._db.execute(
            "INSERT INTO agent_runs (id, idempotency_key, body) VALUES (?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET body = excluded.body",
            (run.id, idempotency_key or None, _dump(run)),
        )

    def get(self, run_id: str) -> AgentRun:
        row = self._db.execute("SELECT body FROM agent_runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise NotFound(f"agent run {run_id!r} does not exist", reason="AGENT_RUN_NOT_FOUND")
        return _load(row["body"])

    def find_by_key(self, idempotency_key: str) -> AgentRun | None:
        row = self._db.execute("SELECT body FROM agent_runs WHERE idempotency_key = ?", (idempotency_key,)).fetchone()
        return _load(row["body"]) if row else None
