"""Conformance suite of the API key store port (and the key rules on top of it), run against every adapter."""

from __future__ import annotations

import datetime as dt
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.gateway.api_keys import ApiKey, ApiKeys, ApiKeyStore, hash_secret, new_secret
from services.gateway.api_keys_dynamodb import DynamoDBApiKeyStore, create_tables
from services.gateway.api_keys_sqlite import SCHEMA, SqliteApiKeyStore
from services.runtime.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from services.runtime.state import SqliteDatabase
from tests.dynamodb import tables_for


@pytest.fixture(params=["sqlite", "dynamodb"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ApiKeyStore]:
    if request.param == "sqlite":
        database = SqliteDatabase(tmp_path / "gateway.db", SCHEMA)
        yield await SqliteApiKeyStore.open(database)
        database.close()
    else:
        request.getfixturevalue("dynamodb_endpoint")  # DynamoDB Local, started once per session
        client, prefix = tables_for(tmp_path, create_tables)  # one set of tables per test
        dynamo = DynamoDBApiKeyStore(client, prefix)
        yield dynamo
        dynamo.close()


@pytest.fixture()
def keys(store: ApiKeyStore) -> ApiKeys:
    return ApiKeys(store)


async def _count(store: ApiKeyStore) -> int:
    page, _ = await store.list(0, 1000)
    return len(page)


async def test_secret_is_stored_only_as_its_hash(keys: ApiKeys, store: ApiKeyStore) -> None:
    key, secret = await keys.create("ci", "operator")
    assert secret.startswith(f"mk_{key.id}_")
    stored = await store.get(key.id)
    assert stored is not None
    assert (stored.key.id, stored.key.role, stored.key.display_name) == (key.id, "operator", "ci")
    assert stored.secret_hash == hash_secret(secret) and len(stored.secret_hash) == 64
    assert secret.split("_", 2)[2] not in repr(stored)


async def test_insert_get_round_trip_keeps_expiry_and_scopes(store: ApiKeyStore) -> None:
    created = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    key = ApiKey("abc123", "scoped", "operator", created, expires=created + dt.timedelta(days=1), scopes=("fs_*", "grep"))
    await store.insert(key, "h" * 64)
    stored = await store.get("abc123")
    assert stored is not None and stored.key == key and stored.secret_hash == "h" * 64
    assert await store.get("nope") is None


async def test_authenticate_accepts_the_secret(keys: ApiKeys) -> None:
    key, secret = await keys.create("ci", "viewer")
    found = await keys.authenticate(secret)
    assert found is not None
    assert (found.id, found.role, found.display_name, found.revoked) == (key.id, "viewer", "ci", None)
    assert found.principal == f"key:{key.id}"
    assert found.identity().principal == found.principal and found.identity().role == "viewer"


@pytest.mark.parametrize("mangle", [lambda s: s + "x", lambda s: s[:-1], lambda s: s.replace("mk_", "xx_", 1), lambda s: ""])
async def test_authenticate_refuses_wrong_secrets(keys: ApiKeys, mangle) -> None:
    _, secret = await keys.create("ci", "viewer")
    assert await keys.authenticate(mangle(secret)) is None


async def test_authenticate_refuses_unknown_id_and_garbage(keys: ApiKeys) -> None:
    await keys.create("ci", "viewer")
    for garbage in ["mk_000000000000_abc", "not-a-key", "mk_", "mk__x", "mk_" + "a" * 5000 + "_x", "mk_a'b_x"]:
        assert await keys.authenticate(garbage) is None


async def test_secret_of_one_key_does_not_open_another(keys: ApiKeys) -> None:
    _first, first_secret = await keys.create("a", "admin")
    second, _ = await keys.create("b", "viewer")
    assert await keys.authenticate(f"mk_{second.id}_{first_secret.split('_', 2)[2]}") is None


async def test_revoked_key_no_longer_authenticates(keys: ApiKeys) -> None:
    key, secret = await keys.create("ci", "admin")
    revoked = await keys.revoke(key.id)
    assert revoked.id == key.id and revoked.revoked is not None
    assert await keys.authenticate(secret) is None
    with pytest.raises(FailedPrecondition) as again:
        await keys.revoke(key.id)
    assert again.value.reason == "API_KEY_REVOKED"


async def test_expired_key_no_longer_authenticates(keys: ApiKeys, store: ApiKeyStore) -> None:
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    await store.insert(ApiKey("old000", "old", "admin", past - dt.timedelta(hours=1), expires=past), hash_secret("mk_old000_s"))
    assert await keys.authenticate("mk_old000_s") is None
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    _, secret = await keys.create("soon", "viewer", expires=soon, scopes=("file_inventory",))
    found = await keys.authenticate(secret)
    assert found is not None and found.expires == soon and found.scopes == ("file_inventory",)


async def test_revoke_unknown_or_empty(keys: ApiKeys) -> None:
    with pytest.raises(NotFound) as missing:
        await keys.revoke("nope")
    assert missing.value.reason == "API_KEY_NOT_FOUND"
    with pytest.raises(InvalidArgument) as empty:
        await keys.revoke("")
    assert [v.field for v in empty.value.violations] == ["id"]


@pytest.mark.parametrize(
    ("name", "role", "field", "extra"),
    [
        ("ci", "root", "api_key.role", {}),
        ("ci", "", "api_key.role", {}),
        ("ci", "ROLE_ADMIN", "api_key.role", {}),
        ("", "viewer", "api_key.display_name", {}),
        ("   ", "viewer", "api_key.display_name", {}),
        ("x" * 101, "viewer", "api_key.display_name", {}),
        ("ci", "viewer", "api_key.expire_time", {"expires": dt.datetime(2000, 1, 1, tzinfo=dt.UTC)}),
        ("ci", "viewer", "api_key.tool_scopes", {"scopes": ("a b",)}),
        ("ci", "viewer", "api_key.tool_scopes", {"scopes": ("",)}),
    ],
)
async def test_bad_requests_name_the_field(keys: ApiKeys, store: ApiKeyStore, name: str, role: str, field: str, extra) -> None:
    with pytest.raises(InvalidArgument) as error:
        await keys.create(name, role, **extra)
    assert [v.field for v in error.value.violations] == [field]
    assert await _count(store) == 0


async def test_list_paginates_newest_first(keys: ApiKeys) -> None:
    made = [(await keys.create(f"k{n}", "viewer"))[0].id for n in range(3)]
    page, more = await keys.list(0, 2)
    rest, more_rest = await keys.list(2, 2)
    assert (len(page), more, len(rest), more_rest) == (2, True, 1, False)
    assert {k.id for k in page + rest} == set(made)


async def test_ping(store: ApiKeyStore) -> None:
    await store.ping()


async def test_bootstrap_admin_writes_a_private_working_key(keys: ApiKeys, store: ApiKeyStore, tmp_path: Path) -> None:
    path = tmp_path / "secrets" / "admin.key"
    await keys.ensure_bootstrap_admin(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    secret = path.read_text().strip()
    admin = await keys.authenticate(secret)
    assert admin is not None and admin.role == "admin" and admin.display_name == "bootstrap-admin"

    await keys.ensure_bootstrap_admin(path)
    assert await _count(store) == 1
    assert path.read_text().strip() == secret


async def test_bootstrap_admin_is_replaced_when_revoked(keys: ApiKeys, tmp_path: Path) -> None:
    path = tmp_path / "admin.key"
    await keys.ensure_bootstrap_admin(path)
    first = await keys.authenticate(path.read_text().strip())
    assert first is not None
    await keys.revoke(first.id)
    await keys.ensure_bootstrap_admin(path)
    second = await keys.authenticate(path.read_text().strip())
    assert second is not None and second.id != first.id and second.role == "admin"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


async def test_insert_of_an_existing_id_is_already_exists(store: ApiKeyStore) -> None:
    key = ApiKey("dup1", "first", "viewer", dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    await store.insert(key, hash_secret("one"))
    with pytest.raises(AlreadyExists):
        await store.insert(key, hash_secret("two"))
    found = await store.get("dup1")
    assert found is not None and found.secret_hash == hash_secret("one")


async def test_bootstrap_admin_is_made_once_for_every_instance(keys: ApiKeys, store: ApiKeyStore, tmp_path: Path) -> None:
    """A second container (its own empty disk, the same shared store) makes no second bootstrap key."""
    await keys.ensure_bootstrap_admin(tmp_path / "first" / "admin.key")
    await keys.ensure_bootstrap_admin(tmp_path / "second" / "admin.key")
    assert await _count(store) == 1
    assert not (tmp_path / "second" / "admin.key").exists()


async def test_given_bootstrap_key_is_added_once_and_writes_no_file(keys: ApiKeys, store: ApiKeyStore, tmp_path: Path) -> None:
    _, secret = new_secret()
    path = tmp_path / "admin.key"
    await keys.ensure_bootstrap_admin(path, secret)
    await ApiKeys(store).ensure_bootstrap_admin(path, secret)  # a second instance with the same secret
    admin = await keys.authenticate(secret)
    assert admin is not None and admin.role == "admin"
    assert await _count(store) == 1 and not path.exists()


async def test_given_bootstrap_key_with_a_taken_id_is_refused(keys: ApiKeys) -> None:
    key_id, secret = new_secret()
    await keys.ensure_bootstrap_admin(Path("unused"), secret)
    with pytest.raises(ValueError, match=f"key {key_id} exists with another secret"):
        await keys.ensure_bootstrap_admin(Path("unused"), f"mk_{key_id}_{'x' * 40}")
    with pytest.raises(ValueError, match="must look like mk_"):
        await keys.ensure_bootstrap_admin(Path("unused"), "not-a-key")


async def test_old_database_gains_the_new_columns(tmp_path: Path) -> None:
    old = "CREATE TABLE api_keys (id TEXT PRIMARY KEY, display_name TEXT NOT NULL, role TEXT NOT NULL, " \
          "secret_hash TEXT NOT NULL, create_time TEXT NOT NULL, revoke_time TEXT);"
    database = SqliteDatabase(tmp_path / "old.db", old)
    await database.run(lambda db: db.execute(
        "INSERT INTO api_keys VALUES ('k1', 'n', 'viewer', ?, '2026-01-01T00:00:00+00:00', NULL)", (hash_secret("mk_k1_s"),)))
    store = await SqliteApiKeyStore.open(database)
    found = await ApiKeys(store).authenticate("mk_k1_s")
    assert found is not None and found.scopes == () and found.expires is None
    database.close()
