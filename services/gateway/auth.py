"""Authentication by API key, authorisation by role, and a token bucket per key."""

from __future__ import annotations

import contextvars
import time
from dataclasses import dataclass

from services.gateway.api_keys import ROLES, ApiKey, ApiKeyStore
from services.runtime.errors import PermissionDenied, ResourceExhausted, Unauthenticated

caller: contextvars.ContextVar[ApiKey | None] = contextvars.ContextVar("caller", default=None)

PUBLIC_PREFIXES = ("/grpc.health.v1.", "/grpc.reflection.", "/mcpmesh.health.v1.")
ADMIN_METHODS = frozenset(
    {
        "/mcpmesh.gateway.v1.GatewayService/CreateApiKey",
        "/mcpmesh.gateway.v1.GatewayService/ListApiKeys",
        "/mcpmesh.gateway.v1.GatewayService/RevokeApiKey",
        "/mcpmesh.tools.v1.ToolService/RegisterTool",
        "/mcpmesh.tools.v1.ToolService/UnregisterTool",
        "/mcpmesh.tools.v1.ToolService/RegisterMcpServer",
        "/mcpmesh.tools.v1.ToolService/RemoveMcpServer",
        "/mcpmesh.tools.v1.ToolService/GrantToolPermission",
        "/mcpmesh.tools.v1.ToolService/RevokeToolPermission",
    }
)
OPERATOR_METHODS = frozenset(
    {
        "/mcpmesh.workflows.v1.WorkflowService/CreateWorkflow",
        "/mcpmesh.workflows.v1.WorkflowService/CancelWorkflow",
        "/mcpmesh.agents.v1.AgentService/RunAgent",
        "/mcpmesh.tools.v1.ToolService/ExecuteTool",
    }
)


def required_role(method: str) -> str:
    if method in ADMIN_METHODS:
        return "admin"
    if method in OPERATOR_METHODS:
        return "operator"
    return "viewer"


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    def __init__(self, per_second: float, burst: int) -> None:
        self._rate = per_second
        self._burst = burst
        self._buckets: dict[str, _Bucket] = {}

    def allow(self, key: str) -> bool:
        now = time.monotonic()
        bucket = self._buckets.setdefault(key, _Bucket(self._burst, now))
        bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.updated) * self._rate)
        bucket.updated = now
        if bucket.tokens < 1:
            return False
        bucket.tokens -= 1
        return True


def bearer(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header, or ""."""
    scheme, _, token = (authorization or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


class Authenticator:
    """Keys are looked up once per `cache_seconds`: a revoked key stops working within that time."""

    def __init__(self, keys: ApiKeyStore, limiter: RateLimiter, cache_seconds: float = 2.0) -> None:
        self._keys = keys
        self._limiter = limiter
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, ApiKey | None]] = {}

    def forget(self) -> None:
        """Drops cached keys, after a revocation on this instance."""
        self._cache.clear()

    def _lookup(self, token: str) -> ApiKey | None:
        now = time.monotonic()
        cached = self._cache.get(token)
        if cached is not None and now - cached[0] < self._cache_seconds:
            return cached[1]
        if len(self._cache) > 10_000:
            self._cache.clear()  # bounded: invalid tokens must not grow it forever
        key = self._keys.authenticate(token)
        self._cache[token] = (now, key)
        return key

    def check(self, method: str, token: str) -> ApiKey | None:
        """The caller's key, or None for public methods; raises when the call is refused."""
        if method.startswith(PUBLIC_PREFIXES):
            return None
        if not token:
            raise Unauthenticated("missing API key: send `Authorization: Bearer <key>`", reason="API_KEY_MISSING")
        key = self._lookup(token)
        if key is None:
            raise Unauthenticated("API key is not valid or was revoked", reason="API_KEY_INVALID")
        needed = required_role(method)
        if ROLES.index(key.role) < ROLES.index(needed):
            raise PermissionDenied(f"{method.rsplit('/', 1)[-1]} needs role {needed}; this key has {key.role}",
                                   reason="ROLE_TOO_LOW", metadata={"required_role": needed})
        if not self._limiter.allow(key.id):
            raise ResourceExhausted("rate limit exceeded for this API key; retry later", reason="RATE_LIMITED")
        return key

    def guard(self, method: str, headers: dict[str, str]) -> None:
        caller.set(self.check(method, bearer(headers.get("authorization"))))
