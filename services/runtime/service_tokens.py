"""Every service verifies the caller's token itself, and calls other services with a token of its own.

A call reaches a service's handler only with a token the gateway's keys signed: from the gateway (for an
outside caller, after it checked the key or token) or from another service (`service:<name>`). A call made
straight to a service port without one is refused, and identity headers alone prove nothing."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import grpc

from services.runtime import call_metadata, identity
from services.runtime.config import Config
from services.runtime.errors import PermissionDenied, ResourceExhausted, Unauthenticated
from services.runtime.identity import Identity
from services.runtime.json_bodies import BODY_HEADER, JsonBodyChecker
from services.runtime.rate_limits import RateLimiter
from services.runtime.signing_keys import KeyRing, SigningKeySource, key_source
from services.runtime.tokens import Verifier, issue

SERVICE_ROLE = "operator"  # what one service may ask of another: run agents and tools, read workflows and health
SERVICE_PRINCIPAL = "service:"
SERVICE_TOKEN_TTL = 300.0
RELOAD_EVERY = 10.0


def bearer_of(context: grpc.aio.ServicerContext) -> str:
    for key, value in call_metadata.of(context):
        if key == "authorization" and isinstance(value, str):
            scheme, _, token = value.partition(" ")
            return token.strip() if scheme.lower() == "bearer" else ""
    return ""


def body_copy(context: grpc.aio.ServicerContext) -> str | None:
    """The edge's base64 copy of a small JSON request body (x-mcpmesh-json-body), if it attached one."""
    for key, value in call_metadata.of(context):
        if key == BODY_HEADER and isinstance(value, str):
            return value
    return None


class Keys:
    """The ring as this process last loaded it; reloaded (at most every RELOAD_EVERY s) for an unknown key id."""

    def __init__(self, source: SigningKeySource, ring: KeyRing) -> None:
        self._source = source
        self.ring = ring
        self.verifier = Verifier(ring.all())
        self._loaded = time.monotonic()
        self._verified: dict[str, tuple[Identity, float]] = {}

    @classmethod
    async def open(cls, config: Config) -> Keys:
        source = key_source(config.signing_key_url, config.data_dir)
        return cls(source, await source.load())

    async def verify(self, token: str) -> Identity:
        # Verified tokens are remembered until they expire: the gateway reuses one token per caller for a
        # minute, so a signature check (about 0.1 ms for ES256) is paid once per caller, not once per call.
        cached = self._verified.get(token)
        if cached is not None and cached[1] > time.time():
            return cached[0]
        if not self.verifier.knows(token) and time.monotonic() - self._loaded >= RELOAD_EVERY:
            self.ring = await self._source.load()
            self.verifier = Verifier(self.ring.all())
            self._verified.clear()
            self._loaded = time.monotonic()
        who, expires = self.verifier.verify_until(token)
        if len(self._verified) > 10_000:
            self._verified.clear()
        self._verified[token] = (who, expires)
        return who


class TokenGuard:
    """The default guard of every service: a verified token with the role the method's contract declares.

    The edge sends token callers straight here, past the gateway, so this guard also takes the caller's
    rate-limit token (the same port and budgets as the gateway's; other services' own calls are not
    counted) and, with `bodies`, refuses unknown fields of the JSON body copy the edge attaches."""

    def __init__(self, keys: Keys, limiter: RateLimiter | None = None, bodies: JsonBodyChecker | None = None) -> None:
        self._keys = keys
        self._limiter = limiter
        self._bodies = bodies

    async def close(self) -> None:
        if self._limiter is not None:
            await self._limiter.buckets.close()

    async def __call__(self, method: str, role: str | None, context: grpc.aio.ServicerContext) -> None:
        if role is None:
            identity.bind(None)
            return
        token = bearer_of(context)
        if not token:
            raise Unauthenticated("missing token: call through the edge, or send a token the gateway issued",
                                  reason="TOKEN_MISSING")
        who = await self._keys.verify(token)
        if not who.has_role(role):
            raise PermissionDenied(f"{method.rsplit('/', 1)[-1]} needs role {role}; this caller has {who.role}",
                                   reason="ROLE_TOO_LOW", metadata={"required_role": role})
        # Calls a service makes for a key (a workflow's steps) were paid for when the key asked for the work.
        if self._limiter is not None and not who.principal.startswith(SERVICE_PRINCIPAL) and not who.actor:
            wait = await self._limiter.wait_time(who.principal, who.role)
            if wait:
                raise ResourceExhausted("rate limit exceeded for this API key; retry later", reason="RATE_LIMITED",
                                        metadata={"retry_after_seconds": f"{wait:.3f}"})
        if self._bodies is not None:
            self._bodies.check(method, body_copy(context))
        identity.bind(who)


class ServiceCredentials:
    """This service's own token, for mesh calls that carry no credentials of their own."""

    def __init__(self, keys: Keys, service: str) -> None:
        self._keys = keys
        self._identity = Identity(f"{SERVICE_PRINCIPAL}{service}", SERVICE_ROLE)
        self._token = ""
        self._renew_at = 0.0
        self._delegated: dict[Identity, tuple[str, float]] = {}  # identity -> (token, renew at)

    def token(self) -> str:
        now = time.time()
        if now >= self._renew_at:
            self._token, expires = issue(self._keys.ring, self._identity, SERVICE_TOKEN_TTL, now)
            self._renew_at = now + (expires - now) / 2  # renewed at half-life: never sent close to expiry
        return self._token

    def token_for(self, principal: Identity) -> str:
        """A token for calls this service makes for `principal` (the key that created a workflow): its role and
        scopes, this service as the actor. The service sends it in place of its own, so the called service applies
        the principal's permissions, not this service's. This service's own token when `principal` is anonymous."""
        if principal.anonymous:
            return self.token()
        now = time.time()
        acting = Identity(principal.principal, principal.role, principal.scopes, self._identity.principal)
        cached = self._delegated.get(acting)
        if cached is None or now >= cached[1]:
            token, expires = issue(self._keys.ring, acting, SERVICE_TOKEN_TTL, now)
            if len(self._delegated) > 10_000:
                self._delegated.clear()
            cached = self._delegated[acting] = (token, now + (expires - now) / 2)
        return cached[0]

    def with_token(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        metadata = list(details.metadata or ())
        if any(key == "authorization" for key, _ in metadata):
            return details
        metadata.append(("authorization", f"Bearer {self.token()}"))
        return grpc.aio.ClientCallDetails(
            details.method, details.timeout, grpc.aio.Metadata(*metadata), details.credentials, details.wait_for_ready
        )

    def interceptors(self) -> list[grpc.aio.ClientInterceptor]:
        # One object per kind: grpc.aio files an interceptor under the first kind it matches only.
        return [_UnaryCredentials(self), _StreamCredentials(self)]


class _UnaryCredentials(grpc.aio.UnaryUnaryClientInterceptor):
    def __init__(self, credentials: ServiceCredentials) -> None:
        self._credentials = credentials

    async def intercept_unary_unary(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        return await continuation(self._credentials.with_token(details), request)


class _StreamCredentials(grpc.aio.UnaryStreamClientInterceptor):
    def __init__(self, credentials: ServiceCredentials) -> None:
        self._credentials = credentials

    async def intercept_unary_stream(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        return await continuation(self._credentials.with_token(details), request)


async def service_credentials(config: Config) -> ServiceCredentials:
    """The interceptor a service's mesh channels carry: its own identity on every call it makes."""
    return ServiceCredentials(await Keys.open(config), config.service)
