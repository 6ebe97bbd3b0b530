"""Identity tokens: signed with the current key, verified with current and retired keys, refused when forged."""

from __future__ import annotations

import json
from pathlib import Path

import jwt
import pytest

from services.runtime.errors import Unauthenticated
from services.runtime.identity import Identity
from services.runtime.signing_keys import KeyRing, SigningKey
from services.runtime.tokens import Verifier, issue, looks_like_jwt

WHO = Identity("key:abc", "operator", ("file_*",))


def test_round_trip_keeps_principal_role_and_scopes() -> None:
    ring = KeyRing(SigningKey.generate())
    token, expires = issue(ring, WHO, ttl=60)
    assert looks_like_jwt(token) and not looks_like_jwt("mk_abc_def")
    assert jwt.get_unverified_header(token)["kid"] == ring.current.kid and jwt.get_unverified_header(token)["alg"] == "ES256"
    assert Verifier(ring.all()).verify(token) == WHO
    assert expires > 0


def test_the_actor_of_a_delegated_token_is_kept_and_a_malformed_one_refused() -> None:
    ring = KeyRing(SigningKey.generate())
    acting = Identity("key:abc", "operator", ("file_*",), actor="service:workflows")
    token, _ = issue(ring, acting, ttl=60)
    assert jwt.decode(token, options={"verify_signature": False})["act"] == {"sub": "service:workflows"}
    assert Verifier(ring.all()).verify(token) == acting
    assert "act" not in jwt.decode(issue(ring, WHO, ttl=60)[0], options={"verify_signature": False})
    claims = {"sub": "key:abc", "role": "operator", "exp": 9_999_999_999, "iat": 1, "aud": "mcpmesh",
              "iss": "mcpmesh-gateway"}
    for act in ("service:workflows", {"sub": 7}):
        bad = jwt.encode({**claims, "act": act}, ring.current.private_key, algorithm="ES256",
                         headers={"kid": ring.current.kid})
        with pytest.raises(Unauthenticated) as error:
            Verifier(ring.all()).verify(bad)
        assert error.value.reason == "TOKEN_INVALID"


def test_expired_token_is_refused() -> None:
    ring = KeyRing(SigningKey.generate())
    token, _ = issue(ring, WHO, ttl=10, now=1_000_000)
    with pytest.raises(Unauthenticated) as error:
        Verifier(ring.all()).verify(token)
    assert error.value.reason == "TOKEN_EXPIRED"


def test_other_key_tampering_and_garbage_are_refused() -> None:
    ring, other = KeyRing(SigningKey.generate()), KeyRing(SigningKey.generate())
    token, _ = issue(other, WHO, ttl=60)
    verifier = Verifier(ring.all())
    forged_kid = jwt.encode({"sub": "key:x", "role": "admin", "exp": 9_999_999_999, "iat": 1, "aud": "mcpmesh", "iss": "mcpmesh-gateway"},
                            other.current.private_key, algorithm="ES256", headers={"kid": ring.current.kid})
    unsigned = jwt.encode({"sub": "key:x", "role": "admin"}, None, algorithm="none")
    good, _ = issue(ring, WHO, ttl=60)
    head, body, signature = good.split(".")
    tampered = ".".join([head, body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1], signature])
    for bad in [token, forged_kid, unsigned, tampered, "a.b.c", ""]:
        with pytest.raises(Unauthenticated):
            verifier.verify(bad)


def test_rotation_keeps_the_previous_key_verifying_until_it_is_dropped() -> None:
    ring = KeyRing(SigningKey.generate())
    old_token, _ = issue(ring, WHO, ttl=600)
    rotated = ring.rotated(keep_seconds=900, now=1000.0)
    assert rotated.current.kid != ring.current.kid and [k.kid for k in rotated.previous] == [ring.current.kid]
    assert Verifier(rotated.all()).verify(old_token) == WHO
    new_token, _ = issue(rotated, WHO, ttl=600)
    assert jwt.get_unverified_header(new_token)["kid"] == rotated.current.kid
    later = rotated.rotated(keep_seconds=900, now=3000.0)  # the first key retired 2000 s ago: gone
    assert ring.current.kid not in [k.kid for k in later.all()]
    with pytest.raises(Unauthenticated):
        Verifier(later.all()).verify(old_token)


def test_the_next_key_is_published_before_it_signs() -> None:
    ring = KeyRing.fresh(now=1000.0)
    assert ring.upcoming is not None and ring.upcoming.kid in [k.kid for k in ring.all()]
    assert ring.announced_for(now=1012.5) == 12.5
    before = Verifier(ring.all())  # what a verifier (the edge's JWKS) knew before the rotation
    rotated = ring.rotated(keep_seconds=900, now=1030.0)
    assert rotated.current.kid == ring.upcoming.kid and rotated.current.announced is None
    assert rotated.upcoming is not None and rotated.upcoming.kid not in [k.kid for k in ring.all()]
    assert rotated.announced_for(now=1031.0) == 1.0
    first_new_token, _ = issue(rotated, WHO, ttl=600)
    assert before.verify(first_new_token) == WHO
    with pytest.raises(ValueError, match="current key first"):
        KeyRing.from_json(json.dumps({"keys": [{"kid": "a", "private_pem": "x", "announced": 1.0}]}))


async def test_a_rotation_waits_until_the_next_key_is_announced(tmp_path: Path) -> None:
    from services.gateway.token_issuer import TokenIssuer
    from services.runtime.errors import FailedPrecondition
    from services.runtime.signing_keys import FileKeySource

    source = FileKeySource(tmp_path / "keys.json")
    path = tmp_path / "keys.json"
    # A ring saved before next keys existed gets one at open, published from then on.
    path.write_text(json.dumps({"keys": [{"kid": "old", "private_pem": SigningKey.generate().private_pem, "retired": None}]}))
    issuer = await TokenIssuer.open(source, ttl=60, announce_seconds=30)
    stored = await source.load()
    assert stored.upcoming is not None and stored.current.kid == "old"
    with pytest.raises(FailedPrecondition) as early:
        await issuer.rotate()
    assert early.value.reason == "SIGNING_KEY_NOT_ANNOUNCED" and "rotate again in 3" in early.value.message
    assert (await source.load()).current.kid == "old"  # nothing changed
    patient = await TokenIssuer.open(source, ttl=60, announce_seconds=0)
    assert await patient.rotate() == stored.upcoming.kid


def test_ring_json_round_trip_and_public_jwk_has_no_private_part() -> None:
    ring = KeyRing(SigningKey.generate()).rotated(keep_seconds=900)
    again = KeyRing.from_json(ring.to_json())
    assert [k.kid for k in again.all()] == [k.kid for k in ring.all()]
    jwk = ring.current.public_jwk()
    assert set(jwk) == {"kty", "crv", "x", "y", "kid", "alg", "use"} and "d" not in jwk
