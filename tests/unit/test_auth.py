"""Tests for API key authentication, role checks and the per-key rate limit."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from services.gateway.api_keys import SCHEMA, ApiKeyStore
from services.gateway.auth import Authenticator, RateLimiter, bearer, caller, required_role
from services.runtime.errors import PermissionDenied, ResourceExhausted, Unauthenticated
from services.runtime.sqlite import open_database

CREATE = "/mcpmesh.workflows.v1.WorkflowService/CreateWorkflow"
GET = "/mcpmesh.workflows.v1.WorkflowService/GetWorkflow"
CREATE_KEY = "/mcpmesh.gateway.v1.GatewayService/CreateApiKey"


@pytest.fixture()
def keys(tmp_path: Path):
    connection = open_database(tmp_path / "gateway.db", SCHEMA)
    yield ApiKeyStore(connection)
    connection.close()


def make(keys: ApiKeyStore, burst: int = 100, per_second: float = 0.0) -> Authenticator:
    return Authenticator(keys, RateLimiter(per_second, burst))


@pytest.mark.parametrize(
    "method",
    ["/grpc.health.v1.Health/Check", "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
     "/mcpmesh.health.v1.HealthReportService/GetHealthReport"],
)
def test_public_methods_need_no_key(keys: ApiKeyStore, method: str) -> None:
    assert make(keys).check(method, "") is None
    assert make(keys).check(method, "garbage") is None


def test_missing_key(keys: ApiKeyStore) -> None:
    with pytest.raises(Unauthenticated) as error:
        make(keys).check(GET, "")
    assert error.value.reason == "API_KEY_MISSING"


def test_invalid_key(keys: ApiKeyStore) -> None:
    with pytest.raises(Unauthenticated) as invalid:
        make(keys).check(GET, "mk_abc_def")
    assert invalid.value.reason == "API_KEY_INVALID"
    with pytest.raises(Unauthenticated) as garbage:
        make(keys).check(GET, "not-a-key")
    assert garbage.value.reason == "API_KEY_INVALID"


def test_revoked_key_is_refused_once_the_cache_expires(keys: ApiKeyStore, monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr("services.gateway.auth.time.monotonic", lambda: now[0])
    auth = Authenticator(keys, RateLimiter(0.0, 100), cache_seconds=2.0)
    key, secret = keys.create("ci", "admin")
    assert auth.check(GET, secret) == keys.authenticate(secret)
    keys.revoke(key.id)
    now[0] += 1.0  # still within the cache: the documented window
    assert auth.check(GET, secret) is not None
    now[0] += 1.5
    with pytest.raises(Unauthenticated) as revoked:
        auth.check(GET, secret)
    assert revoked.value.reason == "API_KEY_INVALID"


def test_forget_makes_revocation_immediate(keys: ApiKeyStore) -> None:
    auth = Authenticator(keys, RateLimiter(0.0, 100), cache_seconds=3600.0)
    key, secret = keys.create("ci", "viewer")
    assert auth.check(GET, secret) is not None
    keys.revoke(key.id)
    assert auth.check(GET, secret) is not None  # still cached
    auth.forget()
    with pytest.raises(Unauthenticated):
        auth.check(GET, secret)


def test_without_cache_revocation_is_immediate(keys: ApiKeyStore) -> None:
    auth = Authenticator(keys, RateLimiter(0.0, 100), cache_seconds=0.0)
    key, secret = keys.create("ci", "viewer")
    assert auth.check(GET, secret) is not None
    keys.revoke(key.id)
    with pytest.raises(Unauthenticated):
        auth.check(GET, secret)


def test_roles(keys: ApiKeyStore) -> None:
    auth = make(keys)
    _, viewer = keys.create("v", "viewer")
    _, operator = keys.create("o", "operator")
    _, admin = keys.create("a", "admin")

    assert auth.check(GET, viewer) is not None
    with pytest.raises(PermissionDenied) as refused:
        auth.check(CREATE, viewer)
    assert refused.value.reason == "ROLE_TOO_LOW"
    assert refused.value.metadata == {"required_role": "operator"}
    assert "CreateWorkflow" in refused.value.message

    allowed = auth.check(CREATE, operator)
    assert allowed is not None and allowed.role == "operator"
    with pytest.raises(PermissionDenied) as operator_refused:
        auth.check(CREATE_KEY, operator)
    assert operator_refused.value.metadata == {"required_role": "admin"}

    assert auth.check(CREATE, admin) is not None
    assert auth.check(CREATE_KEY, admin) is not None


def test_required_role() -> None:
    assert required_role(CREATE) == "operator"
    assert required_role(CREATE_KEY) == "admin"
    assert required_role(GET) == "viewer"


def test_rate_limit_after_burst(keys: ApiKeyStore) -> None:
    auth = make(keys, burst=3, per_second=0.0)  # no refill: the burst is all there is
    _, secret = keys.create("ci", "viewer")
    _, other = keys.create("other", "viewer")
    for _ in range(3):
        assert auth.check(GET, secret) is not None
    with pytest.raises(ResourceExhausted) as limited:
        auth.check(GET, secret)
    assert limited.value.reason == "RATE_LIMITED"
    # Buckets are per key.
    assert auth.check(GET, other) is not None


def test_refused_calls_do_not_spend_tokens(keys: ApiKeyStore) -> None:
    auth = make(keys, burst=1, per_second=0.0)
    _, viewer = keys.create("v", "viewer")
    with pytest.raises(PermissionDenied):
        auth.check(CREATE, viewer)
    assert auth.check(GET, viewer) is not None


def test_rate_limiter_refills_over_time(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr("services.gateway.auth.time.monotonic", lambda: now[0])
    limiter = RateLimiter(per_second=2.0, burst=2)
    assert limiter.allow("k") and limiter.allow("k")
    assert not limiter.allow("k")
    now[0] += 0.5  # one token back
    assert limiter.allow("k")
    assert not limiter.allow("k")
    now[0] += 100  # never more than the burst
    assert [limiter.allow("k") for _ in range(3)] == [True, True, False]


def test_bearer_parsing() -> None:
    assert bearer("Bearer abc") == "abc"
    assert bearer("bearer  abc ") == "abc"
    assert bearer("Basic abc") == ""
    assert bearer("Bearer ") == ""
    assert bearer("") == ""
    assert bearer(None) == ""


def test_guard_sets_the_caller(keys: ApiKeyStore) -> None:
    auth = make(keys)
    key, secret = keys.create("ci", "operator")

    async def scenario():
        auth.guard(CREATE, {"authorization": f"Bearer {secret}"})
        return caller.get()

    seen = asyncio.run(scenario())
    assert seen is not None and seen.id == key.id
