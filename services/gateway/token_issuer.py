"""The gateway's side of identity tokens: signs them for API keys, publishes the public keys, rotates the ring."""

from __future__ import annotations

import math
import time

from services.runtime.errors import FailedPrecondition
from services.runtime.identity import Identity
from services.runtime.signing_keys import KeyRing, SigningKeySource
from services.runtime.tokens import Verifier, issue

RELOAD_EVERY = 10.0  # seconds: a key rotated by another gateway instance is picked up within this
EDGE_JWKS_CACHE = 5.0  # seconds the edge's jwt_authn keeps the JWKS (envoy/edge.yaml, remote_jwks.cache_duration)
# A next key signs only once every gateway instance has reloaded the ring that publishes it and the edge has
# refetched the JWKS since: a rotation never leaves the edge refusing new tokens.
ANNOUNCE_SECONDS = RELOAD_EVERY + EDGE_JWKS_CACHE + 5.0
CALL_TOKEN_TTL = 120.0  # tokens ext_authz puts on key calls in place of the key: short, reused for half their life


class TokenIssuer:
    def __init__(self, source: SigningKeySource, ring: KeyRing, ttl: float, announce_seconds: float = ANNOUNCE_SECONDS) -> None:
        self._source = source
        self._announce_seconds = announce_seconds
        self._ring = ring
        self._verifier = Verifier(ring.all())
        self._loaded = time.monotonic()
        self.ttl = ttl
        self._per_caller: dict[Identity, tuple[str, float]] = {}
        self._verified: dict[str, tuple[Identity, float]] = {}

    @classmethod
    async def open(cls, source: SigningKeySource, ttl: float, announce_seconds: float = ANNOUNCE_SECONDS) -> TokenIssuer:
        ring = await source.load()
        if ring.upcoming is None:  # saved before next keys were published: publish one now
            ring = ring.announcing()
            await source.save(ring)
        return cls(source, ring, ttl, announce_seconds)

    async def _fresh(self) -> None:
        if time.monotonic() - self._loaded >= RELOAD_EVERY:
            self._use(await self._source.load())

    def _use(self, ring: KeyRing) -> None:
        self._per_caller.clear()
        self._verified.clear()
        self._ring = ring
        self._verifier = Verifier(ring.all())
        self._loaded = time.monotonic()

    async def issue(self, identity: Identity, not_after: float | None = None) -> tuple[str, float]:
        """A token for `identity`, expiring after the configured lifetime or at `not_after` (a key's expiry)."""
        await self._fresh()
        ttl = self.ttl if not_after is None else max(1.0, min(self.ttl, not_after - time.time()))
        return issue(self._ring, identity, ttl)

    def token_for(self, identity: Identity) -> str:
        """A short token for a caller the gateway has verified, put on a key call in place of the key (cached)."""
        now = time.time()
        cached = self._per_caller.get(identity)
        if cached is not None and cached[1] > now:
            return cached[0]
        if len(self._per_caller) > 10_000:
            self._per_caller.clear()
        token, expires = issue(self._ring, identity, CALL_TOKEN_TTL, now)
        self._per_caller[identity] = (token, now + (expires - now) / 2)
        return token

    async def verify(self, token: str) -> Identity:
        cached = self._verified.get(token)  # a signature check is paid once per token, not once per call
        if cached is not None and cached[1] > time.time():
            return cached[0]
        if not self._verifier.knows(token):
            await self._fresh()  # signed after a rotation elsewhere, perhaps
        who, expires = self._verifier.verify_until(token)
        if len(self._verified) > 10_000:
            self._verified.clear()
        self._verified[token] = (who, expires)
        return who

    async def jwks(self) -> list[dict[str, str]]:
        await self._fresh()
        return [key.public_jwk() for key in self._ring.all()]

    async def rotate(self) -> str:
        """The published next key becomes the current one; the old one verifies for one more token lifetime (plus
        a margin), then goes. Refused while the next key is younger than ANNOUNCE_SECONDS (the edge may not
        have it yet): a rotation waits that long after the one before it, or after the first start."""
        ring = await self._source.load()
        if ring.upcoming is None:
            ring = ring.announcing()
            await self._source.save(ring)
        wait = self._announce_seconds - ring.announced_for()
        if wait > 0:
            raise FailedPrecondition(
                f"the next signing key was published {ring.announced_for():.0f} s ago and the edge may not know it yet; "
                f"rotate again in {math.ceil(wait)} s", reason="SIGNING_KEY_NOT_ANNOUNCED",
                metadata={"retry_after_seconds": f"{wait:.3f}"})
        ring = ring.rotated(keep_seconds=self.ttl + 60)
        await self._source.save(ring)
        self._use(ring)
        return ring.current.kid
