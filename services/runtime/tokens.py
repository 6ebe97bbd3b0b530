"""Identity tokens: short-lived JWTs (ES256) the gateway signs and every service verifies with the public keys."""

from __future__ import annotations

import time
from collections.abc import Sequence

import jwt

from services.runtime.errors import Unauthenticated
from services.runtime.identity import ROLES, Identity
from services.runtime.signing_keys import KeyRing, SigningKey

ALGORITHM = "ES256"
ISSUER = "mcpmesh-gateway"
AUDIENCE = "mcpmesh"
LEEWAY = 5.0  # seconds of clock skew tolerated between processes


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and not token.startswith("mk_")


def issue(ring: KeyRing, identity: Identity, ttl: float, now: float | None = None) -> tuple[str, float]:
    """A token for `identity` valid for `ttl` seconds, signed with the current key; returns it and its expiry."""
    now = time.time() if now is None else now
    expires = now + ttl
    claims = {
        "iss": ISSUER, "aud": AUDIENCE, "sub": identity.principal, "role": identity.role,
        "scopes": list(identity.scopes), "iat": int(now), "exp": int(expires),
    }
    if identity.actor:  # RFC 8693's actor claim: who makes the calls for the subject
        claims["act"] = {"sub": identity.actor}
    token = jwt.encode(claims, ring.current.private_key, algorithm=ALGORITHM, headers={"kid": ring.current.kid})
    return token, float(int(expires))


class Verifier:
    """Checks signature, issuer, audience and expiry against the public keys of a ring (current and retired)."""

    def __init__(self, keys: Sequence[SigningKey]) -> None:
        self._keys = {key.kid: key.private_key.public_key() for key in keys}

    def knows(self, token: str) -> bool:
        try:
            return jwt.get_unverified_header(token).get("kid") in self._keys
        except jwt.PyJWTError:
            return False

    def verify(self, token: str) -> Identity:
        return self.verify_until(token)[0]

    def verify_until(self, token: str) -> tuple[Identity, float]:
        """The identity and the expiry (epoch seconds) of a valid token; raises Unauthenticated."""
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            key = self._keys.get(kid) if isinstance(kid, str) else None
            if key is None:
                raise Unauthenticated("token is signed by an unknown key", reason="TOKEN_INVALID")
            claims = jwt.decode(token, key, algorithms=[ALGORITHM], audience=AUDIENCE, issuer=ISSUER, leeway=LEEWAY,
                                options={"require": ["exp", "iat", "sub"]})
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("token has expired: exchange the API key for a new one", reason="TOKEN_EXPIRED") from None
        except jwt.PyJWTError:
            raise Unauthenticated("token is not valid", reason="TOKEN_INVALID") from None
        role, scopes, act = claims.get("role"), claims.get("scopes", []), claims.get("act", {})
        if role not in ROLES or not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes) \
                or not isinstance(act, dict) or not isinstance(act.get("sub", ""), str):
            raise Unauthenticated("token claims are not valid", reason="TOKEN_INVALID")
        return Identity(str(claims["sub"]), role, tuple(scopes), act.get("sub", "")), float(claims["exp"])
