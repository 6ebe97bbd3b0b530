"""The SQLite adapter of the API key store."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3

from services.gateway.api_keys import ApiKey, StoredKey
from services.runtime.errors import AlreadyExists, FailedPrecondition, NotFound
from services.runtime.state import SqliteDatabase

SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    role TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    create_time TEXT NOT NULL,
    revoke_time TEXT,
    expire_time TEXT,
    scopes TEXT NOT NULL DEFAULT '[]'
);
"""
# Databases made before expiry and scopes existed get the two columns on open.
_ADDED_COLUMNS = {"expire_time": "TEXT", "scopes": "TEXT NOT NULL DEFAULT '[]'"}


def _time(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


def _key(row: sqlite3.Row) -> ApiKey:
    return ApiKey(
        row["id"], row["display_name"], row["role"], dt.datetime.fromisoformat(row["create_time"]),
        revoked=_time(row["revoke_time"]), expires=_time(row["expire_time"]), scopes=tuple(json.loads(row["scopes"])),
    )


def _migrate(db: sqlite3.Connection) -> None:
    present = {row["name"] for row in db.execute("PRAGMA table_info(api_keys)")}
    for column, kind in _ADDED_COLUMNS.items():
        if column not in present:
            db.execute(f"ALTER TABLE api_keys ADD COLUMN {column} {kind}")


class SqliteApiKeyStore:
    def __init__(self, database: SqliteDatabase) -> None:
        self._db = database

    @classmethod
    async def open(cls, database: SqliteDatabase) -> SqliteApiKeyStore:
        store = cls(database)
        await database.transaction(_migrate)
        return store

    async def insert(self, key: ApiKey, secret_hash: str) -> None:
        def work(db: sqlite3.Connection) -> None:
            try:
                db.execute(
                    "INSERT INTO api_keys (id, display_name, role, secret_hash, create_time, expire_time, scopes)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (key.id, key.display_name, key.role, secret_hash, key.created.isoformat(),
                     key.expires.isoformat() if key.expires else None, json.dumps(list(key.scopes))),
                )
            except sqlite3.IntegrityError:
                raise AlreadyExists(f"API key {key.id!r} already exists", reason="API_KEY_EXISTS") from None

        await self._db.run(work)

    async def get(self, key_id: str) -> StoredKey | None:
        row = await self._db.run(lambda db: db.execute("SELECT * FROM api_keys WHERE id = ?", (key_id,)).fetchone())
        return None if row is None else StoredKey(_key(row), row["secret_hash"])

    async def list(self, offset: int, limit: int) -> tuple[list[ApiKey], bool]:
        rows = await self._db.run(
            lambda db: db.execute(
                "SELECT * FROM api_keys ORDER BY create_time DESC, id LIMIT ? OFFSET ?", (limit + 1, offset)
            ).fetchall()
        )
        return [_key(r) for r in rows[:limit]], len(rows) > limit

    async def revoke(self, key_id: str, when: dt.datetime) -> ApiKey:
        def work(db: sqlite3.Connection) -> ApiKey:
            row = db.execute("SELECT * FROM api_keys WHERE id = ?", (key_id,)).fetchone()
            if row is None:
                raise NotFound(f"API key {key_id!r} does not exist", reason="API_KEY_NOT_FOUND")
            if row["revoke_time"]:
                raise FailedPrecondition(f"API key {key_id!r} is already revoked", reason="API_KEY_REVOKED")
            db.execute("UPDATE api_keys SET revoke_time = ? WHERE id = ?", (when.isoformat(), key_id))
            return _key(db.execute("SELECT * FROM api_keys WHERE id = ?", (key_id,)).fetchone())

        return await self._db.transaction(work)

    async def ping(self) -> None:
        await self._db.ping()
