"""Tool permissions granted to principals, stored in SQLite."""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
from dataclasses import dataclass

from services.runtime.errors import InvalidArgument, NotFound

SCHEMA = """
CREATE TABLE IF NOT EXISTS tool_permissions (
    tool TEXT NOT NULL,
    principal TEXT NOT NULL,
    create_time TEXT NOT NULL,
    PRIMARY KEY (tool, principal)
);
"""
PRINCIPAL = re.compile(r"^(role:(admin|operator|viewer)|key:[A-Za-z0-9_-]{1,64})$")


@dataclass(frozen=True)
class Permission:
    tool: str
    principal: str
    created: dt.datetime


def _check(tool: str, principal: str, prefix: str) -> None:
    if not tool:
        raise InvalidArgument.field(f"{prefix}tool", "is required")
    if not PRINCIPAL.match(principal):
        raise InvalidArgument.field(f"{prefix}principal", "must be role:<admin|operator|viewer> or key:<id>")


class PermissionStore:
    def __init__(self, connection: sqlite3.Connection) -> None:
        self._db = connection

    def grant(self, tool: str, principal: str) -> Permission:
        _check(tool, principal, "permission.")
        now = dt.datetime.now(dt.UTC)
        self._db.execute(
            "INSERT OR IGNORE INTO tool_permissions (tool, principal, create_time) VALUES (?, ?, ?)",
            (tool, principal, now.isoformat()),
        )
        row = self._db.execute(
            "SELECT * FROM tool_permissions WHERE tool = ? AND principal = ?", (tool, principal)
        ).fetchone()
        return _permission(row)

    def revoke(self, tool: str, principal: str) -> None:
        _check(tool, principal, "")
        deleted = self._db.execute(
            "DELETE FROM tool_permissions WHERE tool = ? AND principal = ?", (tool, principal)
        ).rowcount
        if not deleted:
            raise NotFound(f"no permission on {tool!r} for {principal!r}", reason="PERMISSION_NOT_FOUND")

    def list(self, tool: str, offset: int, limit: int) -> tuple[list[Permission], bool]:
        """One page, and whether more rows follow."""
        rows = self._db.execute(
            "SELECT * FROM tool_permissions WHERE (? = '' OR tool = ?) ORDER BY tool, principal LIMIT ? OFFSET ?",
            (tool, tool, limit + 1, offset),
        ).fetchall()
        return [_permission(r) for r in rows[:limit]], len(rows) > limit


def _permission(row: sqlite3.Row) -> Permission:
    return Permission(row["tool"], row["principal"], dt.datetime.fromisoformat(row["create_time"]))
