"""Conformance suite of the tool permission store port, run against every adapter."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.runtime.errors import InvalidArgument, NotFound
from services.runtime.state import SqliteDatabase
from services.tools.permissions import PermissionStore
from services.tools.permissions_dynamodb import DynamoDBPermissionStore, create_tables
from services.tools.permissions_sqlite import SCHEMA, SqlitePermissionStore
from tests.dynamodb import tables_for


@pytest.fixture(params=["sqlite", "dynamodb"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[PermissionStore]:
    if request.param == "sqlite":
        database = SqliteDatabase(tmp_path / "tools.db", SCHEMA)
        yield SqlitePermissionStore(database)
        database.close()
    else:
        request.getfixturevalue("dynamodb_endpoint")  # DynamoDB Local, started once per session
        client, prefix = tables_for(tmp_path, create_tables)  # one set of tables per test
        dynamo = DynamoDBPermissionStore(client, prefix)
        yield dynamo
        dynamo.close()


async def test_grant_is_listed_and_granting_twice_keeps_the_first(store: PermissionStore) -> None:
    first = await store.grant("file_inventory", "role:viewer")
    again = await store.grant("file_inventory", "role:viewer")
    assert again == first
    page, more = await store.page("", 0, 10)
    assert [(p.tool, p.principal) for p in page] == [("file_inventory", "role:viewer")]
    assert not more


async def test_list_pages_in_order_and_filters_by_tool(store: PermissionStore) -> None:
    for tool, principal in [("b", "key:k1"), ("a", "role:operator"), ("a", "key:k2"), ("fs_*", "role:viewer")]:
        await store.grant(tool, principal)
    page, more = await store.page("", 0, 2)
    assert [(p.tool, p.principal) for p in page] == [("a", "key:k2"), ("a", "role:operator")]
    assert more
    page, more = await store.page("", 2, 2)
    assert [(p.tool, p.principal) for p in page] == [("b", "key:k1"), ("fs_*", "role:viewer")]
    assert not more
    only_a, _ = await store.page("a", 0, 10)
    assert {p.principal for p in only_a} == {"key:k2", "role:operator"}


async def test_held_by_returns_the_grants_of_those_principals(store: PermissionStore) -> None:
    await store.grant("fs_*", "role:viewer")
    await store.grant("time.*", "key:abc")
    await store.grant("other", "key:zzz")
    held = await store.held_by(["role:viewer", "key:abc"])
    assert sorted((p.tool, p.principal) for p in held) == [("fs_*", "role:viewer"), ("time.*", "key:abc")]
    assert await store.held_by([]) == []


async def test_revoke_removes_and_a_missing_grant_is_not_found(store: PermissionStore) -> None:
    await store.grant("x", "role:operator")
    await store.revoke("x", "role:operator")
    assert await store.held_by(["role:operator"]) == []
    with pytest.raises(NotFound):
        await store.revoke("x", "role:operator")


@pytest.mark.parametrize(
    ("tool", "principal", "field"),
    [
        ("", "role:viewer", "permission.tool"),
        ("a b", "role:viewer", "permission.tool"),
        ("x" * 129, "role:viewer", "permission.tool"),
        ("x", "root", "permission.principal"),
        ("x", "role:superuser", "permission.principal"),
        ("x", "key:" + "k" * 65, "permission.principal"),
    ],
)
async def test_bad_grants_name_the_field(store: PermissionStore, tool: str, principal: str, field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await store.grant(tool, principal)
    assert caught.value.violations[0].field == field


async def test_ping_answers(store: PermissionStore) -> None:
    await store.ping()
