"""The SQLite adapter of the tool permission store."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Sequence

from services.runtime.clock import utcnow
from services.runtime.errors import NotFound
from services.runtime.state import SqliteDatabase
from services.tools.permissions import Permission, check_grant

SCHEMA = """
CREATE TABLE IF NOT EXISTS tool_permissions (
    tool TEXT NOT NULL,
    principal TEXT NOT NULL,
    create_time TEXT NOT NULL,
    PRIMARY KEY (tool, principal)
);
CREATE INDEX IF NOT EXISTS tool_permissions_by_principal ON tool_permissions (principal);
"""


class SqlitePermissionStore:
    def __init__(self, database: SqliteDatabase) -> None:
        self._db = database

    async def grant(self, tool: str, principal: str) -> Permission:
        check_grant(tool, principal, "permission.")
        now = utcnow().isoformat()

        def work(db: sqlite3.Connection) -> Permission:
            db.execute(
                "INSERT OR IGNORE INTO tool_permissions (tool, principal, create_time) VALUES (?, ?, ?)",
                (tool, principal, now),
            )
            row = db.execute(
                "SELECT * FROM tool_permissions WHERE tool = ? AND principal = ?", (tool, principal)
            ).fetchone()
            return _permission(row)

        return await self._db.transaction(work)

    async def revoke(self, tool: str, principal: str) -> None:
        check_grant(tool, principal, "")
        deleted = await self._db.run(
            lambda db: db.execute(
                "DELETE FROM tool_permissions WHERE tool = ? AND principal = ?", (tool, principal)
            ).rowcount
        )
        if not deleted:
            raise NotFound(f"no permission on {tool!r} for {principal!r}", reason="PERMISSION_NOT_FOUND")

    async def page(self, tool: str, offset: int, limit: int) -> tuple[list[Permission], bool]:
        rows = await self._db.run(
            lambda db: db.execute(
                "SELECT * FROM tool_permissions WHERE (? = '' OR tool = ?) ORDER BY tool, principal LIMIT ? OFFSET ?",
                (tool, tool, limit + 1, offset),
            ).fetchall()
        )
        return [_permission(r) for r in rows[:limit]], len(rows) > limit

    async def held_by(self, principals: Sequence[str]) -> list[Permission]:
        wanted = list(principals)
        if not wanted:
            return []
        marks = ",".join("?" * len(wanted))
        rows = await self._db.run(
            lambda db: db.execute(
                f"SELECT * FROM tool_permissions WHERE principal IN ({marks}) ORDER BY tool, principal", wanted
            ).fetchall()
        )
        return [_permission(r) for r in rows]

    async def ping(self) -> None:
        await self._db.ping()


def _permission(row: sqlite3.Row) -> Permission:
    return Permission(row["tool"], row["principal"], dt.datetime.fromisoformat(row["create_time"]))
