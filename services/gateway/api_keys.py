"""API keys stored hashed in SQLite, with a bootstrap admin key written once to a 0600 file."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import secrets
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from services.runtime.errors import FailedPrecondition, InvalidArgument, NotFound

SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    role TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    create_time TEXT NOT NULL,
    revoke_time TEXT
);
"""
ROLES = ("viewer", "operator", "admin")


@dataclass(frozen=True)
class ApiKey:
    id: str
    display_name: str
    role: str
    created: dt.datetime
    revoked: dt.datetime | None = None

    @property
    def principal(self) -> str:
        return f"key:{self.id}"


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _key(row: sqlite3.Row) -> ApiKey:
    revoked = dt.datetime.fromisoformat(row["revoke_time"]) if row["revoke_time"] else None
    return ApiKey(row["id"], row["display_name"], row["role"], dt.datetime.fromisoformat(row["create_time"]), revoked)


class ApiKeyStore:
    """Secrets look like `mk_<id>_<random>`; the id finds the row, the hash proves the secret."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._db = connection

    def create(self, display_name: str, role: str) -> tuple[ApiKey, str]:
        if not display_name.strip():
            raise InvalidArgument.field("api_key.display_name", "is required")
        if len(display_name) > 100:
            raise InvalidArgument.field("api_key.display_name", "must be at most 100 characters")
        if role not in ROLES:
            raise InvalidArgument.field("api_key.role", "must be ROLE_VIEWER, ROLE_OPERATOR or ROLE_ADMIN")
        key_id = secrets.token_hex(6)
        secret = f"mk_{key_id}_{secrets.token_urlsafe(32)}"
        now = dt.datetime.now(dt.UTC)
        self._db.execute(
            "INSERT INTO api_keys (id, display_name, role, secret_hash, create_time) VALUES (?, ?, ?, ?, ?)",
            (key_id, display_name, role, _hash(secret), now.isoformat()),
        )
        return ApiKey(key_id, display_name, role, now), secret

    def list(self, offset: int, limit: int) -> tuple[list[ApiKey], bool]:
        rows = self._db.execute(
            "SELECT * FROM api_keys ORDER BY create_time DESC, id LIMIT ? OFFSET ?", (limit + 1, offset)
        ).fetchall()
        return [_key(r) for r in rows[:limit]], len(rows) > limit

    def revoke(self, key_id: str) -> ApiKey:
        if not key_id:
            raise InvalidArgument.field("id", "is required")
        row = self._db.execute("SELECT * FROM api_keys WHERE id = ?", (key_id,)).fetchone()
        if row is None:
            raise NotFound(f"API key {key_id!r} does not exist", reason="API_KEY_NOT_FOUND")
        if row["revoke_time"]:
            raise FailedPrecondition(f"API key {key_id!r} is already revoked", reason="API_KEY_REVOKED")
        now = dt.datetime.now(dt.UTC).isoformat()
        self._db.execute("UPDATE api_keys SET revoke_time = ? WHERE id = ?", (now, key_id))
        return _key(self._db.execute("SELECT * FROM api_keys WHERE id = ?", (key_id,)).fetchone())

    def authenticate(self, secret: str) -> ApiKey | None:
        parts = secret.split("_")
        if len(parts) < 3 or parts[0] != "mk":
            return None
        row = self._db.execute("SELECT * FROM api_keys WHERE id = ?", (parts[1],)).fetchone()
        if row is None or row["revoke_time"] or not hmac.compare_digest(row["secret_hash"], _hash(secret)):
            return None
        return _key(row)

    def ensure_bootstrap_admin(self, path: Path) -> None:
        """On first start, makes an admin key and writes its secret to `path` (0600) so the owner can log in."""
        if path.exists() and self.authenticate(path.read_text().strip()) is not None:
            return
        _, secret = self.create("bootstrap-admin", "admin")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secret + "\n")
        os.chmod(path, 0o600)
