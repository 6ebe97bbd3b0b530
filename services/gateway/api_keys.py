"""API keys: the record, the store port, and the rules (hashed secrets, roles, expiry, tool scope, bootstrap key)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from services.runtime.clock import utcnow
from services.runtime.errors import AlreadyExists, InvalidArgument
from services.runtime.identity import ROLES, Identity

MAX_DISPLAY_NAME = 100
BOOTSTRAP_NAME = "bootstrap-admin"
log = logging.getLogger("mcpmesh.api_keys")
MAX_SCOPES = 32


@dataclass(frozen=True)
class ApiKey:
    id: str
    display_name: str
    role: str
    created: dt.datetime
    revoked: dt.datetime | None = None
    expires: dt.datetime | None = None  # None: never
    scopes: tuple[str, ...] = ()  # tool name patterns the key may execute; empty: no limit

    @property
    def principal(self) -> str:
        return f"key:{self.id}"

    def identity(self) -> Identity:
        return Identity(self.principal, self.role, self.scopes)

    def usable(self, now: dt.datetime) -> bool:
        return self.revoked is None and (self.expires is None or now < self.expires)


@dataclass(frozen=True)
class StoredKey:
    key: ApiKey
    secret_hash: str


class ApiKeyStore(Protocol):
    """Where keys live. Adapters: SQLite (api_keys_sqlite.py), DynamoDB (api_keys_dynamodb.py); chosen in app.py by the
    state URL."""

    async def insert(self, key: ApiKey, secret_hash: str) -> None: ...

    async def get(self, key_id: str) -> StoredKey | None: ...

    async def list(self, offset: int, limit: int) -> tuple[list[ApiKey], bool]:
        """Newest first; the flag says whether more follow."""
        ...

    async def revoke(self, key_id: str, when: dt.datetime) -> ApiKey:
        """Raises NotFound (API_KEY_NOT_FOUND) or FailedPrecondition (API_KEY_REVOKED); atomic."""
        ...

    async def ping(self) -> None: ...


def hash_secret(secret: str) -> str:
    # The secret holds 256 random bits, so a fast hash is enough: there is nothing to brute-force.
    return hashlib.sha256(secret.encode()).hexdigest()


def _check(display_name: str, role: str, expires: dt.datetime | None, scopes: tuple[str, ...], now: dt.datetime) -> None:
    if not display_name.strip():
        raise InvalidArgument.field("api_key.display_name", "is required")
    if len(display_name) > MAX_DISPLAY_NAME:
        raise InvalidArgument.field("api_key.display_name", f"must be at most {MAX_DISPLAY_NAME} characters")
    if role not in ROLES:
        raise InvalidArgument.field("api_key.role", "must be ROLE_VIEWER, ROLE_OPERATOR or ROLE_ADMIN")
    if expires is not None and expires <= now:
        raise InvalidArgument.field("api_key.expire_time", "must be in the future")
    if len(scopes) > MAX_SCOPES:
        raise InvalidArgument.field("api_key.tool_scopes", f"at most {MAX_SCOPES} patterns")
    for scope in scopes:
        if not scope or len(scope) > 128 or not all(c.isalnum() or c in "_-.*" for c in scope):
            raise InvalidArgument.field("api_key.tool_scopes", f"{scope[:40]!r} is not a tool name pattern (letters, digits, _ - . *)")


class ApiKeys:
    """Secrets look like `mk_<id>_<random>`; the id finds the record, the hash proves the secret."""

    def __init__(self, store: ApiKeyStore) -> None:
        self.store = store

    async def create(
        self, display_name: str, role: str, *, expires: dt.datetime | None = None, scopes: tuple[str, ...] = ()
    ) -> tuple[ApiKey, str]:
        now = utcnow()
        _check(display_name, role, expires, scopes, now)
        key_id, secret = new_secret()
        key = ApiKey(key_id, display_name, role, now, expires=expires, scopes=scopes)
        await self.store.insert(key, hash_secret(secret))
        return key, secret

    async def list(self, offset: int, limit: int) -> tuple[list[ApiKey], bool]:
        return await self.store.list(offset, limit)

    async def revoke(self, key_id: str) -> ApiKey:
        if not key_id:
            raise InvalidArgument.field("id", "is required")
        return await self.store.revoke(key_id, utcnow())

    async def authenticate(self, secret: str) -> ApiKey | None:
        """The key whose secret this is, if it is neither revoked nor expired."""
        parts = secret.split("_", 2)
        if len(parts) < 3 or parts[0] != "mk" or not parts[1] or len(parts[1]) > 32 or not parts[1].isalnum():
            return None
        stored = await self.store.get(parts[1])
        if stored is None or not hmac.compare_digest(stored.secret_hash, hash_secret(secret)):
            return None
        return stored.key if stored.key.usable(utcnow()) else None

    async def ensure_bootstrap_admin(self, path: Path, given: str = "") -> None:
        """The owner's first login.

        With `given` (MCPMESH_BOOTSTRAP_ADMIN_KEY, injected from a secret store where containers have no lasting
        disk), that secret is an admin key: it is added when the store lacks it, and no file is written. Otherwise
        the first start makes an admin key and writes its secret to `path` (0600); a store that already holds a
        usable bootstrap key made elsewhere (another instance, an earlier container) does not get a second one."""
        if given:
            await self._ensure_given_admin(given)
            return
        if path.exists() and await self.authenticate(path.read_text().strip()) is not None:
            return
        if await self._has_bootstrap_admin():
            log.warning("bootstrap admin key", extra={
                "detail": f"an earlier start made the bootstrap admin key and {path} does not hold it; no second one "
                          "is made. Sign in with that key, or set MCPMESH_BOOTSTRAP_ADMIN_KEY (see the README)"})
            return
        _, secret = await self.create(BOOTSTRAP_NAME, "admin")
        _write_private(path, secret + "\n")

    async def _has_bootstrap_admin(self) -> bool:
        now, offset = utcnow(), 0
        while True:
            page, more = await self.store.list(offset, 200)
            if any(k.display_name == BOOTSTRAP_NAME and k.role == "admin" and k.usable(now) for k in page):
                return True
            if not more:
                return False
            offset += len(page)

    async def _ensure_given_admin(self, secret: str) -> None:
        key_id = _given_key_id(secret)
        stored = await self.store.get(key_id)
        if stored is None:
            try:
                await self.store.insert(ApiKey(key_id, BOOTSTRAP_NAME, "admin", utcnow()), hash_secret(secret))
                return
            except AlreadyExists:  # another instance added it at the same moment
                stored = await self.store.get(key_id)
        if stored is None or not hmac.compare_digest(stored.secret_hash, hash_secret(secret)):
            raise ValueError(f"MCPMESH_BOOTSTRAP_ADMIN_KEY: key {key_id} exists with another secret")
        if not stored.key.usable(utcnow()):
            log.warning("bootstrap admin key", extra={
                "detail": f"MCPMESH_BOOTSTRAP_ADMIN_KEY names key {key_id}, which was revoked or expired; it stays so"})


def _write_private(path: Path, text: str) -> None:
    """Writes `text` to a file only its owner may read (0600 from the start, not after)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(path, 0o600)


def new_secret() -> tuple[str, str]:
    """A fresh key id and its secret, `mk_<id>_<random>`."""
    key_id = secrets.token_hex(6)
    return key_id, f"mk_{key_id}_{secrets.token_urlsafe(32)}"


def _given_key_id(secret: str) -> str:
    parts = secret.split("_", 2)
    if len(parts) < 3 or parts[0] != "mk" or not parts[1].isalnum() or len(parts[1]) > 32 or len(parts[2]) < 32:
        raise ValueError("MCPMESH_BOOTSTRAP_ADMIN_KEY must look like mk_<id>_<at least 32 random characters>; "
                         "`python -m services.gateway.api_keys` prints a fresh one")
    return parts[1]


if __name__ == "__main__":
    print(new_secret()[1])
