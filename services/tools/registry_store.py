"""What the tool registry keeps in the state store, shared by every tools instance: registrations and
idempotency records. The port is `RegistryStore`; adapters: registry_store_sqlite.SqliteRegistryStore,
registry_store_dynamodb.DynamoDBRegistryStore."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Protocol

IDEMPOTENCY_RETENTION = dt.timedelta(hours=24)


@dataclass(frozen=True)
class Registration:
    """A registered thing by kind ("mcp_server", "tool") and name, with its JSON description."""

    kind: str
    name: str
    body: dict[str, Any]
    updated: dt.datetime


@dataclass(frozen=True)
class IdempotencyRecord:
    """The first result a caller got for an idempotency key, and a hash of the request that produced it."""

    caller: str
    key: str
    request_hash: str
    result: dict[str, Any]
    duration_ms: int
    created: dt.datetime


class RegistryStore(Protocol):
    async def put(self, kind: str, name: str, body: dict[str, Any]) -> Registration:
        """Creates or replaces a registration."""

    async def delete(self, kind: str, name: str) -> bool:
        """Removes a registration; False when there was none."""

    async def list(self, kind: str) -> list[Registration]:
        """Every registration of a kind, ordered by name."""

    async def version(self) -> int:
        """A number that changes whenever a registration is put or deleted (instances refresh on change)."""

    async def remember(self, record: IdempotencyRecord) -> IdempotencyRecord:
        """Stores the record unless one exists for (caller, key); returns the stored one (the first wins)."""

    async def recall(self, caller: str, key: str) -> IdempotencyRecord | None:
        """The record of (caller, key), if it has not expired."""

    async def ping(self) -> None:
        """Raises when the store cannot be reached."""


def request_hash(tool: str, arguments: dict[str, Any]) -> str:
    """Canonical JSON of what was asked, so a reused key with another request is recognised."""
    canonical = json.dumps([tool, arguments], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()
