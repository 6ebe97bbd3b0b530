"""The tool registry for a caller: permissions enforced, idempotency keys scoped by caller and request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from services.runtime.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from services.runtime.identity import ANONYMOUS, Identity
from services.runtime.state import SqliteDatabase
from services.tools.execution import ToolOutput
from services.tools.permissions import ToolPolicy
from services.tools.permissions_sqlite import SCHEMA as PERMISSIONS_SCHEMA
from services.tools.permissions_sqlite import SqlitePermissionStore
from services.tools.registry import ToolDefinition, ToolRegistry
from services.tools.registry_store_sqlite import SCHEMA as REGISTRY_SCHEMA
from services.tools.registry_store_sqlite import SqliteRegistryStore

ADMIN = Identity("key:root", "admin")
OPERATOR = Identity("key:op1", "operator")
OTHER_OPERATOR = Identity("key:op2", "operator")
VIEWER = Identity("key:view", "viewer")
SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}, "additionalProperties": False}


class Counter:
    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, arguments: dict[str, Any]) -> ToolOutput:
        self.calls += 1
        return ToolOutput.of({"n": arguments.get("n", 0), "call": self.calls})


@pytest.fixture()
def counter() -> Counter:
    return Counter()


def _tools(counter: Counter) -> list[ToolDefinition]:
    return [
        ToolDefinition("fs_list", "lists", SCHEMA, counter),
        ToolDefinition("fs_read", "reads", SCHEMA, counter),
        ToolDefinition("time_now", "time", SCHEMA, counter),
    ]


class Instance:
    """One tools process: its own connection to the shared database file."""

    def __init__(self, path: Path, counter: Counter) -> None:
        self.database = SqliteDatabase(path, PERMISSIONS_SCHEMA + REGISTRY_SCHEMA)
        self.permissions = SqlitePermissionStore(self.database)
        self.registry = ToolRegistry(_tools(counter), SqliteRegistryStore(self.database), ToolPolicy(self.permissions))


@pytest.fixture()
async def instance(tmp_path: Path, counter: Counter) -> AsyncIterator[Instance]:
    made = Instance(tmp_path / "tools.db", counter)
    yield made
    made.database.close()


async def _names(instance: Instance, caller: Identity) -> list[str]:
    return [t.name for t in await instance.registry.list(caller)]


async def test_defaults_without_grants(instance: Instance) -> None:
    everything = ["fs_list", "fs_read", "time_now"]
    assert await _names(instance, ADMIN) == everything
    assert await _names(instance, OPERATOR) == everything
    assert await _names(instance, ANONYMOUS) == everything  # a service calling inside the mesh
    assert await _names(instance, VIEWER) == []
    await instance.registry.execute("fs_list", {}, OPERATOR)
    with pytest.raises(PermissionDenied) as denied:
        await instance.registry.execute("fs_list", {}, VIEWER)
    assert denied.value.reason == "TOOL_PERMISSION_DENIED"


async def test_role_grant_by_pattern_opens_and_narrows(instance: Instance) -> None:
    await instance.permissions.grant("fs_*", "role:viewer")
    await instance.permissions.grant("time_now", "role:operator")
    assert await _names(instance, VIEWER) == ["fs_list", "fs_read"]
    assert await _names(instance, OPERATOR) == ["time_now"]  # a grant naming the role replaces its default
    with pytest.raises(PermissionDenied):
        await instance.registry.execute("fs_read", {}, OPERATOR)
    assert await _names(instance, ADMIN) == ["fs_list", "fs_read", "time_now"]


async def test_key_grant_adds_to_the_role_grants(instance: Instance) -> None:
    await instance.permissions.grant("fs_read", "role:viewer")
    await instance.permissions.grant("time_*", "key:view")
    assert await _names(instance, VIEWER) == ["fs_read", "time_now"]
    assert await _names(instance, Identity("key:another", "viewer")) == ["fs_read"]


async def test_key_scopes_limit_even_an_admin(instance: Instance) -> None:
    scoped = Identity("key:scoped", "admin", ("fs_*",))
    assert await _names(instance, scoped) == ["fs_list", "fs_read"]
    with pytest.raises(PermissionDenied):
        await instance.registry.get("time_now", scoped)


async def test_same_key_same_request_returns_the_first_result(instance: Instance, counter: Counter) -> None:
    first = await instance.registry.execute("fs_list", {"n": 1}, OPERATOR, "k1")
    again = await instance.registry.execute("fs_list", {"n": 1}, OPERATOR, "k1")
    assert (first.cached, again.cached) == (False, True)
    assert again.result == first.result and counter.calls == 1


async def test_same_key_other_request_is_failed_precondition(instance: Instance, counter: Counter) -> None:
    await instance.registry.execute("fs_list", {"n": 1}, OPERATOR, "k1")
    with pytest.raises(FailedPrecondition) as refused:
        await instance.registry.execute("fs_list", {"n": 2}, OPERATOR, "k1")
    assert refused.value.reason == "IDEMPOTENCY_KEY_REUSED"
    with pytest.raises(FailedPrecondition):
        await instance.registry.execute("fs_read", {"n": 1}, OPERATOR, "k1")
    assert counter.calls == 1


async def test_keys_are_scoped_by_caller(instance: Instance, counter: Counter) -> None:
    mine = await instance.registry.execute("fs_list", {"n": 1}, OPERATOR, "shared")
    theirs = await instance.registry.execute("fs_list", {"n": 2}, OTHER_OPERATOR, "shared")
    assert not theirs.cached and theirs.result["n"] == 2 and mine.result["n"] == 1
    assert counter.calls == 2


async def test_idempotency_records_are_shared_by_instances(tmp_path: Path, counter: Counter) -> None:
    one, two = Instance(tmp_path / "shared.db", counter), Instance(tmp_path / "shared.db", counter)
    try:
        first = await one.registry.execute("fs_list", {"n": 5}, OPERATOR, "k")
        again = await two.registry.execute("fs_list", {"n": 5}, OPERATOR, "k")
        assert again.cached and again.result == first.result and counter.calls == 1
        await one.permissions.grant("time_now", "role:viewer")
        assert await _names(two, VIEWER) == ["time_now"]
    finally:
        one.database.close()
        two.database.close()


async def test_bad_arguments_and_keys_name_the_field(instance: Instance) -> None:
    with pytest.raises(InvalidArgument) as bad:
        await instance.registry.execute("fs_list", {"n": "x"}, OPERATOR)
    assert bad.value.violations[0].field == "arguments.n"
    with pytest.raises(InvalidArgument) as long_key:
        await instance.registry.execute("fs_list", {}, OPERATOR, "k" * 300)
    assert long_key.value.violations[0].field == "idempotency_key"
