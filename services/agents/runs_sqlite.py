"""The SQLite adapter of the agent run store: one row per run, one row per finding."""

from __future__ import annotations

import json
import sqlite3

from services.agents.base import Finding
from services.agents.runs import AgentRun, finding_from_dict, finding_to_dict, run_from_json, run_to_json
from services.runtime.errors import NotFound
from services.runtime.state import SqliteDatabase

SCHEMA = """
CREATE TABLE IF NOT EXISTS agent_run_records (
    id TEXT PRIMARY KEY,
    caller TEXT NOT NULL DEFAULT '',
    idempotency_key TEXT,
    body TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS agent_run_records_by_key ON agent_run_records (caller, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE TABLE IF NOT EXISTS agent_run_findings (
    run_id TEXT NOT NULL REFERENCES agent_run_records (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);
"""


class SqliteRunStore:
    def __init__(self, database: SqliteDatabase) -> None:
        self._db = database

    async def create(self, run: AgentRun) -> AgentRun:
        def work(db: sqlite3.Connection) -> AgentRun:
            if run.idempotency_key:
                earlier = _by_key(db, run.caller, run.idempotency_key)
                if earlier is not None:
                    return earlier
            db.execute(
                "INSERT INTO agent_run_records (id, caller, idempotency_key, body) VALUES (?, ?, ?, ?)",
                (run.id, run.caller, run.idempotency_key or None, run_to_json(run)),
            )
            _write_findings(db, run)
            return run

        # BEGIN IMMEDIATE: two instances racing on one key see one winner; the loser gets the winner's run.
        return await self._db.transaction(work)

    async def save(self, run: AgentRun) -> None:
        def work(db: sqlite3.Connection) -> None:
            updated = db.execute("UPDATE agent_run_records SET body = ? WHERE id = ?", (run_to_json(run), run.id)).rowcount
            if not updated:
                raise NotFound(f"agent run {run.id!r} does not exist", reason="AGENT_RUN_NOT_FOUND")
            db.execute("DELETE FROM agent_run_findings WHERE run_id = ?", (run.id,))
            _write_findings(db, run)

        await self._db.transaction(work)

    async def get(self, run_id: str) -> AgentRun:
        row = await self._db.run(lambda db: db.execute("SELECT body FROM agent_run_records WHERE id = ?", (run_id,)).fetchone())
        if row is None:
            raise NotFound(f"agent run {run_id!r} does not exist", reason="AGENT_RUN_NOT_FOUND")
        return run_from_json(row["body"])

    async def findings(self, run_id: str, offset: int, limit: int) -> tuple[list[Finding], int]:
        def work(db: sqlite3.Connection) -> tuple[list[Finding], int] | None:
            if db.execute("SELECT 1 FROM agent_run_records WHERE id = ?", (run_id,)).fetchone() is None:
                return None
            total = db.execute("SELECT COUNT(*) FROM agent_run_findings WHERE run_id = ?", (run_id,)).fetchone()[0]
            rows = db.execute(
                "SELECT body FROM agent_run_findings WHERE run_id = ? AND seq >= ? ORDER BY seq LIMIT ?",
                (run_id, offset, limit),
            ).fetchall()
            return [finding_from_dict(json.loads(r["body"])) for r in rows], total

        page = await self._db.run(work)
        if page is None:
            raise NotFound(f"agent run {run_id!r} does not exist", reason="AGENT_RUN_NOT_FOUND")
        return page

    async def find_by_key(self, caller: str, idempotency_key: str) -> AgentRun | None:
        return await self._db.run(lambda db: _by_key(db, caller, idempotency_key))

    async def ping(self) -> None:
        await self._db.ping()


def _by_key(db: sqlite3.Connection, caller: str, key: str) -> AgentRun | None:
    row = db.execute("SELECT body FROM agent_run_records WHERE caller = ? AND idempotency_key = ?", (caller, key)).fetchone()
    return run_from_json(row["body"]) if row else None


def _write_findings(db: sqlite3.Connection, run: AgentRun) -> None:
    db.executemany(
        "INSERT INTO agent_run_findings (run_id, seq, body) VALUES (?, ?, ?)",
        ((run.id, seq, json.dumps(finding_to_dict(f))) for seq, f in enumerate(run.result.findings)),
    )
