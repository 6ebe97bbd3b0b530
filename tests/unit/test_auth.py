"""Tests for API key authentication, role checks (roles from the contracts) and the per-key rate limit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.gateway.api_keys import ApiKeys
from services.gateway.api_keys_sqlite import SCHEMA, SqliteApiKeyStore
from services.gateway.auth import Authenticator, RateLimiter, bearer
from services.runtime import identity
from services.runtime.errors import PermissionDenied, ResourceExhausted, Unauthenticated
from services.runtime.roles import role_of
from services.runtime.state import SqliteDatabase

CREATE = "/mcpmesh.workflows.v1.WorkflowService/CreateWorkflow"
GET = "/mcpmesh.workflows.v1.WorkflowService/GetWorkflow"
CREATE_KEY = "/mcpmesh.gateway.v1.GatewayService/CreateApiKey"


def role(method: str) -> str | None:
    return role_of(*method.strip("/").split("/"))


@pytest.fixture()
async def keys(tmp_path: Path) -> AsyncIterator[ApiKeys]:
    database = SqliteDatabase(tmp_path / "gateway.db", SCHEMA)
    yield ApiKeys(await SqliteApiKeyStore.open(database))
    database.close()


def make(keys: ApiKeys, burst: int = 100, per_second: float = 0.0) -> Authenticator:
    return Authenticator(keys, RateLimiter(per_second, burst))


async def check(auth: Authenticator, method: str, token: str):
    return await auth.check(method, role(method), token)


@pytest.mark.parametrize(
    "method", ["/grpc.health.v1.Health/Check", "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"]
)
async def test_standard_health_and_reflection_need_no_key(keys: ApiKeys, method: str) -> None:
    assert role(method) is None
    assert await check(make(keys), method, "") is None
    assert await check(make(keys), method, "garbage") is None


async def test_detailed_health_report_needs_a_key(keys: ApiKeys) -> None:
    method = "/mcpmesh.health.v1.HealthReportService/GetHealthReport"
    assert role(method) == "viewer"
    with pytest.raises(Unauthenticated):
        await check(make(keys), method, "")
    _, viewer = await keys.create("v", "viewer")
    assert await check(make(keys), method, viewer) is not None


async def test_missing_key(keys: ApiKeys) -> None:
    with pytest.raises(Unauthenticated) as error:
        await check(make(keys), GET, "")
    assert error.value.reason == "API_KEY_MISSING"


async def test_invalid_key(keys: ApiKeys) -> None:
    for token in ["mk_abc_def", "not-a-key", "mk_" + "a" * 10_000]:
        with pytest.raises(Unauthenticated) as invalid:
            await check(make(keys), GET, token)
        assert invalid.value.reason == "API_KEY_INVALID"


async def test_revoked_key_is_refused_once_the_cache_expires(keys: ApiKeys, monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr("services.gateway.auth.time.monotonic", lambda: now[0])
    auth = Authenticator(keys, RateLimiter(0.0, 100), cache_seconds=2.0)
    key, secret = await keys.create("ci", "admin")
    assert await check(auth, GET, secret) == key.identity()
    await keys.revoke(key.id)
    now[0] += 1.0  # still within the cache: the documented window
    assert await check(auth, GET, secret) is not None
    now[0] += 1.5
    with pytest.raises(Unauthenticated) as revoked:
        await check(auth, GET, secret)
    assert revoked.value.reason == "API_KEY_INVALID"


async def test_forget_makes_revocation_immediate(keys: ApiKeys) -> None:
    auth = Authenticator(keys, RateLimiter(0.0, 100), cache_seconds=3600.0)
    key, secret = await keys.create("ci", "viewer")
    assert await check(auth, GET, secret) is not None
    await keys.revoke(key.id)
    assert await check(auth, GET, secret) is not None  # still cached
    auth.forget()
    with pytest.raises(Unauthenticated):
        await check(auth, GET, secret)


async def test_roles(keys: ApiKeys) -> None:
    auth = make(keys)
    _, viewer = await keys.create("v", "viewer")
    _, operator = await keys.create("o", "operator")
    _, admin = await keys.create("a", "admin")

    assert await check(auth, GET, viewer) is not None
    with pytest.raises(PermissionDenied) as refused:
        await check(auth, CREATE, viewer)
    assert refused.value.reason == "ROLE_TOO_LOW"
    assert refused.value.metadata == {"required_role": "operator"}
    assert "CreateWorkflow" in refused.value.message

    allowed = await check(auth, CREATE, operator)
    assert allowed is not None and allowed.role == "operator"
    with pytest.raises(PermissionDenied) as operator_refused:
        await check(auth, CREATE_KEY, operator)
    assert operator_refused.value.metadata == {"required_role": "admin"}

    assert await check(auth, CREATE, admin) is not None
    assert await check(auth, CREATE_KEY, admin) is not None


async def test_rate_limit_after_burst(keys: ApiKeys) -> None:
    auth = make(keys, burst=3, per_second=0.5)
    _, secret = await keys.create("ci", "viewer")
    _, other = await keys.create("other", "viewer")
    for _ in range(3):
        assert await check(auth, GET, secret) is not None
    with pytest.raises(ResourceExhausted) as limited:
        await check(auth, GET, secret)
    assert limited.value.reason == "RATE_LIMITED"
    assert 0 < float(limited.value.metadata["retry_after_seconds"]) <= 2.0
    # Buckets are per key.
    assert await check(auth, GET, other) is not None


async def test_refused_calls_do_not_spend_tokens(keys: ApiKeys) -> None:
    auth = make(keys, burst=1, per_second=0.0)
    _, viewer = await keys.create("v", "viewer")
    with pytest.raises(PermissionDenied):
        await check(auth, CREATE, viewer)
    assert await check(auth, GET, viewer) is not None


async def test_rate_limiter_refills_over_time(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr("services.runtime.rate_limits.time.monotonic", lambda: now[0])
    limiter = RateLimiter(per_second=2.0, burst=2)
    assert await limiter.allow("k") and await limiter.allow("k")
    assert await limiter.wait_time("k") == pytest.approx(0.5)
    now[0] += 0.5  # one token back
    assert await limiter.allow("k")
    assert not await limiter.allow("k")
    now[0] += 100  # never more than the burst
    assert [await limiter.allow("k") for _ in range(3)] == [True, True, False]


def test_bearer_parsing() -> None:
    assert bearer("Bearer abc") == "abc"
    assert bearer("bearer  abc ") == "abc"
    assert bearer("Basic abc") == ""
    assert bearer("Bearer ") == ""
    assert bearer("") == ""
    assert bearer(None) == ""


class _Context:
    def invocation_metadata(self):
        return ()


async def test_guard_binds_the_caller_read_by_identity_caller(keys: ApiKeys) -> None:
    auth = make(keys)
    key, secret = await keys.create("ci", "operator", scopes=("file_*",))
    await auth.guard(CREATE, role(CREATE), {"authorization": f"Bearer {secret}"})
    seen = identity.caller(_Context())
    assert (seen.principal, seen.role, seen.scopes) == (key.principal, "operator", ("file_*",))


async def test_tokens_from_the_issuer_are_accepted_and_forged_ones_refused(keys: ApiKeys, tmp_path: Path) -> None:
    from services.gateway.token_issuer import TokenIssuer
    from services.runtime.identity import Identity
    from services.runtime.signing_keys import FileKeySource, KeyRing, SigningKey
    from services.runtime.tokens import issue

    issuer = await TokenIssuer.open(FileKeySource(tmp_path / "keys.json"), ttl=60, announce_seconds=0)
    auth = Authenticator(keys, RateLimiter(0.0, 100), tokens=issuer)
    token, _ = await issuer.issue(Identity("key:abc", "operator", ("file_*",)))
    who = await check(auth, CREATE, token)
    assert who is not None and (who.principal, who.role, who.scopes) == ("key:abc", "operator", ("file_*",))
    with pytest.raises(PermissionDenied):
        await check(auth, CREATE_KEY, token)
    forged, _ = issue(KeyRing(SigningKey.generate()), Identity("key:abc", "admin"), ttl=60)
    with pytest.raises(Unauthenticated) as refused:
        await check(auth, CREATE_KEY, forged)
    assert refused.value.reason == "TOKEN_INVALID"
    published = [k["kid"] for k in await issuer.jwks()]
    kid = await issuer.rotate()
    assert kid in published  # the key that signs from now on was public before it signed anything
    after, _ = await issuer.issue(Identity("key:abc", "viewer"))
    assert (await check(auth, GET, token)) is not None  # signed before the rotation: still valid
    assert (await check(auth, GET, after)) is not None and kid in [k["kid"] for k in await issuer.jwks()]


async def test_budgets_can_differ_per_role() -> None:
    limiter = RateLimiter(per_second=0.0, burst=1, per_role={"admin": (0.0, 3)})
    assert [await limiter.allow("key:v", "viewer") for _ in range(2)] == [True, False]
    assert [await limiter.allow("key:a", "admin") for _ in range(4)] == [True, True, True, False]
    assert await limiter.allow("key:o", "operator") and not await limiter.allow("key:o", "operator")  # the default
