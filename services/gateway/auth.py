"""Authentication by API key, authorisation by the role each RPC's contract declares, and a token bucket per key."""

from __future__ import annotations

import time

from services.gateway.api_keys import ApiKey, ApiKeys
from services.gateway.token_issuer import TokenIssuer
from services.runtime import identity
from services.runtime.errors import PermissionDenied, ResourceExhausted, Unauthenticated
from services.runtime.identity import Identity
from services.runtime.rate_limits import RateLimiter
from services.runtime.tokens import looks_like_jwt

MAX_TOKEN = 4096  # longer bearer tokens are refused before any lookup


def bearer(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header, or ""."""
    scheme, _, token = (authorization or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


class Authenticator:
    """A bearer is an identity token (verified with the public keys) or an API key, looked up once per
    `cache_seconds`: a revoked key stops working within that time, its tokens when they expire."""

    def __init__(self, keys: ApiKeys, limiter: RateLimiter, cache_seconds: float = 2.0, tokens: TokenIssuer | None = None) -> None:
        self._keys = keys
        self._tokens = tokens
        self._limiter = limiter
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, ApiKey | None]] = {}

    async def close(self) -> None:
        await self._limiter.buckets.close()

    def forget(self) -> None:
        """Drops cached keys, after a revocation on this instance."""
        self._cache.clear()

    async def _lookup(self, token: str) -> ApiKey | None:
        now = time.monotonic()
        cached = self._cache.get(token)
        if cached is not None and now - cached[0] < self._cache_seconds:
            return cached[1]
        if len(self._cache) > 10_000:
            self._cache.clear()  # bounded: invalid tokens must not grow it forever
        key = await self._keys.authenticate(token)
        self._cache[token] = (now, key)
        return key

    async def identify(self, token: str) -> Identity:
        """Who a bearer token or API key is; raises Unauthenticated."""
        if not token:
            raise Unauthenticated("missing credentials: send `Authorization: Bearer <API key or token>`", reason="API_KEY_MISSING")
        if len(token) > MAX_TOKEN:
            raise Unauthenticated("credentials are not valid", reason="API_KEY_INVALID")
        if self._tokens is not None and looks_like_jwt(token):
            return await self._tokens.verify(token)
        key = await self._lookup(token)
        if key is None:
            raise Unauthenticated("API key is not valid, expired or was revoked", reason="API_KEY_INVALID")
        return key.identity()

    async def check(self, method: str, role: str | None, token: str, limit: bool = True) -> Identity | None:
        """The caller, or None when `role` is None (public by design); raises when the call is refused.

        `limit` False: the receiving service takes the rate-limit token (the edge's ext_authz checks)."""
        if role is None:
            return None
        who = await self.identify(token)
        if not who.has_role(role):
            raise PermissionDenied(f"{method.rsplit('/', 1)[-1]} needs role {role}; this caller has {who.role}",
                                   reason="ROLE_TOO_LOW", metadata={"required_role": role})
        wait = await self._limiter.wait_time(who.principal, who.role) if limit else 0.0
        if wait:
            raise ResourceExhausted("rate limit exceeded for this API key; retry later", reason="RATE_LIMITED",
                                    metadata={"retry_after_seconds": f"{wait:.3f}"})
        return who

    async def guard(self, method: str, role: str | None, headers: dict[str, str], limit: bool = True) -> None:
        identity.bind(await self.check(method, role, bearer(headers.get("authorization")), limit))
