"""Conformance suite of the registry store port (registrations and idempotency records), run against every adapter."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.runtime.state import SqliteDatabase
from services.tools.registry_store import IdempotencyRecord, RegistryStore, request_hash
from services.tools.registry_store_dynamodb import DynamoDBRegistryStore, create_tables
from services.tools.registry_store_sqlite import SCHEMA, SqliteRegistryStore
from tests.dynamodb import tables_for


@pytest.fixture(params=["sqlite", "dynamodb"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RegistryStore]:
    if request.param == "sqlite":
        database = SqliteDatabase(tmp_path / "tools.db", SCHEMA)
        yield SqliteRegistryStore(database)
        database.close()
    else:
        request.getfixturevalue("dynamodb_endpoint")  # DynamoDB Local, started once per session
        client, prefix = tables_for(tmp_path, create_tables)  # one set of tables per test
        dynamo = DynamoDBRegistryStore(client, prefix)
        yield dynamo
        dynamo.close()


def _record(caller: str, key: str, result: dict[str, object], asked: str = "h1") -> IdempotencyRecord:
    return IdempotencyRecord(caller, key, asked, dict(result), 3, dt.datetime.now(dt.UTC))


async def test_put_list_replace_delete(store: RegistryStore) -> None:
    before = await store.version()
    await store.put("mcp_server", "time", {"command": ["mcp-server-time"]})
    await store.put("mcp_server", "alpha", {"url": "http://127.0.0.1:1/mcp"})
    await store.put("tool", "time", {"other": "kind"})
    assert [r.name for r in await store.list("mcp_server")] == ["alpha", "time"]
    replaced = await store.put("mcp_server", "time", {"command": ["mcp-server-time", "--x"]})
    assert replaced.body == {"command": ["mcp-server-time", "--x"]}
    listed = {r.name: r.body for r in await store.list("mcp_server")}
    assert listed["time"] == {"command": ["mcp-server-time", "--x"]}
    assert await store.version() > before
    assert await store.delete("mcp_server", "time")
    assert not await store.delete("mcp_server", "time")
    assert [r.name for r in await store.list("mcp_server")] == ["alpha"]
    assert [r.name for r in await store.list("tool")] == ["time"]


async def test_version_is_unchanged_by_a_delete_of_nothing(store: RegistryStore) -> None:
    version = await store.version()
    await store.delete("tool", "missing")
    assert await store.version() == version


async def test_first_idempotency_record_wins_and_is_scoped_by_caller(store: RegistryStore) -> None:
    assert await store.recall("key:a", "k") is None
    first = await store.remember(_record("key:a", "k", {"n": 1}))
    second = await store.remember(_record("key:a", "k", {"n": 2}, asked="h2"))
    assert second.result == {"n": 1} and second.request_hash == "h1"
    assert first.result == {"n": 1}
    other = await store.remember(_record("key:b", "k", {"n": 3}))
    assert other.result == {"n": 3}
    recalled = await store.recall("key:a", "k")
    assert recalled is not None and recalled.result == {"n": 1} and recalled.duration_ms == 3


async def test_expired_records_are_not_recalled(store: RegistryStore) -> None:
    old = IdempotencyRecord("key:a", "old", "h", {}, 1, dt.datetime.now(dt.UTC) - dt.timedelta(days=2))
    await store.remember(old)
    assert await store.recall("key:a", "old") is None


def test_request_hash_is_canonical() -> None:
    assert request_hash("t", {"a": 1, "b": [1, 2]}) == request_hash("t", {"b": [1, 2], "a": 1})
    assert request_hash("t", {"a": 1}) != request_hash("t", {"a": 2})
    assert request_hash("t", {"a": 1}) != request_hash("u", {"a": 1})


async def test_ping_answers(store: RegistryStore) -> None:
    await store.ping()


async def test_a_large_result_is_kept_whole_and_the_first_still_wins(store: RegistryStore) -> None:
    # Random text compresses poorly: far beyond what one DynamoDB item holds.
    large = {"blob": secrets.token_hex(700_000), "n": 1}
    first = await store.remember(_record("key:a", "big", large))
    assert first.result == large
    second = await store.remember(_record("key:a", "big", {"blob": secrets.token_hex(700_000), "n": 2}, asked="h2"))
    assert second.result == large and second.request_hash == "h1"
    recalled = await store.recall("key:a", "big")
    assert recalled is not None and recalled.result == large
