"""Tests for the hashed API key store and the bootstrap admin key."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest

from services.gateway.api_keys import SCHEMA, ApiKeyStore
from services.runtime.errors import FailedPrecondition, InvalidArgument, NotFound
from services.runtime.sqlite import open_database


@pytest.fixture()
def database(tmp_path: Path):
    connection = open_database(tmp_path / "gateway.db", SCHEMA)
    yield connection
    connection.close()


@pytest.fixture()
def keys(database: sqlite3.Connection) -> ApiKeyStore:
    return ApiKeyStore(database)


def test_secret_is_stored_only_as_its_hash(keys: ApiKeyStore, database: sqlite3.Connection) -> None:
    key, secret = keys.create("ci", "operator")
    assert secret.startswith(f"mk_{key.id}_")
    rows = [dict(r) for r in database.execute("SELECT * FROM api_keys")]
    assert len(rows) == 1
    row = rows[0]
    assert row["id"] == key.id and row["role"] == "operator" and row["display_name"] == "ci"
    assert all(secret not in str(value) for value in row.values())
    secret_part = secret.split("_", 2)[2]
    assert all(secret_part not in str(value) for value in row.values())
    assert len(row["secret_hash"]) == 64 and row["secret_hash"] != secret


def test_authenticate_accepts_the_secret(keys: ApiKeyStore) -> None:
    key, secret = keys.create("ci", "viewer")
    found = keys.authenticate(secret)
    assert found is not None
    assert (found.id, found.role, found.display_name, found.revoked) == (key.id, "viewer", "ci", None)
    assert found.principal == f"key:{key.id}"


@pytest.mark.parametrize("mangle", [lambda s: s + "x", lambda s: s[:-1], lambda s: s.replace("mk_", "xx_", 1), lambda s: ""])
def test_authenticate_refuses_wrong_secrets(keys: ApiKeyStore, mangle) -> None:
    _, secret = keys.create("ci", "viewer")
    assert keys.authenticate(mangle(secret)) is None


def test_authenticate_refuses_unknown_id_and_garbage(keys: ApiKeyStore) -> None:
    keys.create("ci", "viewer")
    assert keys.authenticate("mk_000000000000_abc") is None
    assert keys.authenticate("not-a-key") is None
    assert keys.authenticate("mk_") is None


def test_secret_of_one_key_does_not_open_another(keys: ApiKeyStore) -> None:
    _first, first_secret = keys.create("a", "admin")
    second, _ = keys.create("b", "viewer")
    forged = f"mk_{second.id}_{first_secret.split('_', 2)[2]}"
    assert keys.authenticate(forged) is None


def test_revoked_key_no_longer_authenticates(keys: ApiKeyStore) -> None:
    key, secret = keys.create("ci", "admin")
    revoked = keys.revoke(key.id)
    assert revoked.id == key.id and revoked.revoked is not None
    assert keys.authenticate(secret) is None
    with pytest.raises(FailedPrecondition) as again:
        keys.revoke(key.id)
    assert again.value.reason == "API_KEY_REVOKED"


def test_revoke_unknown_or_empty(keys: ApiKeyStore) -> None:
    with pytest.raises(NotFound) as missing:
        keys.revoke("nope")
    assert missing.value.reason == "API_KEY_NOT_FOUND"
    with pytest.raises(InvalidArgument) as empty:
        keys.revoke("")
    assert [v.field for v in empty.value.violations] == ["id"]


@pytest.mark.parametrize(
    ("name", "role", "field"),
    [
        ("ci", "root", "api_key.role"),
        ("ci", "", "api_key.role"),
        ("ci", "ROLE_ADMIN", "api_key.role"),
        ("", "viewer", "api_key.display_name"),
        ("   ", "viewer", "api_key.display_name"),
        ("x" * 101, "viewer", "api_key.display_name"),
    ],
)
def test_bad_requests_name_the_field(keys: ApiKeyStore, database: sqlite3.Connection, name: str, role: str, field: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        keys.create(name, role)
    assert [v.field for v in error.value.violations] == [field]
    assert database.execute("SELECT COUNT(*) FROM api_keys").fetchone()[0] == 0


def test_list_paginates(keys: ApiKeyStore) -> None:
    made = {keys.create(f"k{n}", "viewer")[0].id for n in range(3)}
    page, more = keys.list(0, 2)
    rest, more_rest = keys.list(2, 2)
    assert (len(page), more, len(rest), more_rest) == (2, True, 1, False)
    assert {k.id for k in page + rest} == made


def test_bootstrap_admin_writes_a_private_working_key(keys: ApiKeyStore, database: sqlite3.Connection, tmp_path: Path) -> None:
    path = tmp_path / "secrets" / "admin.key"
    keys.ensure_bootstrap_admin(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    secret = path.read_text().strip()
    admin = keys.authenticate(secret)
    assert admin is not None and admin.role == "admin" and admin.display_name == "bootstrap-admin"

    keys.ensure_bootstrap_admin(path)
    assert database.execute("SELECT COUNT(*) FROM api_keys").fetchone()[0] == 1
    assert path.read_text().strip() == secret


def test_bootstrap_admin_is_replaced_when_revoked(keys: ApiKeyStore, database: sqlite3.Connection, tmp_path: Path) -> None:
    path = tmp_path / "admin.key"
    keys.ensure_bootstrap_admin(path)
    first = keys.authenticate(path.read_text().strip())
    assert first is not None
    keys.revoke(first.id)
    keys.ensure_bootstrap_admin(path)
    second = keys.authenticate(path.read_text().strip())
    assert second is not None and second.id != first.id and second.role == "admin"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
