"""API keys exchanged for short-lived signed tokens at the gateway; the public keys published; keys with expiry and scope."""

from __future__ import annotations

import base64
import json
import time

import httpx

from services.launcher.processes import LocalMesh


def _claims(token: str) -> dict:
    body = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def test_a_key_is_exchanged_for_a_token_that_works_like_the_key(mesh: LocalMesh, rest: httpx.Client) -> None:
    created = rest.post("/v1/api-keys", json={"displayName": "ci", "role": "ROLE_OPERATOR", "toolScopes": ["file_*"]}).json()
    assert created["apiKey"]["toolScopes"] == ["file_*"]
    exchange = httpx.post(f"{mesh.edge_url}/v1/tokens", json={}, headers={"Authorization": f"Bearer {created['secret']}"}, timeout=10)
    assert exchange.status_code == 200, exchange.text
    token = exchange.json()["token"]
    claims = _claims(token)
    assert (claims["sub"], claims["role"], claims["scopes"]) == (f"key:{created['apiKey']['id']}", "operator", ["file_*"])
    assert claims["exp"] - claims["iat"] <= 900
    whoami = httpx.get(f"{mesh.edge_url}/v1/whoami", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert whoami.status_code == 200 and whoami.json()["role"] == "ROLE_OPERATOR"
    # A token is renewed only while its key is usable: revoking the key stops the renewals.
    again = httpx.post(f"{mesh.edge_url}/v1/tokens", json={}, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert again.status_code == 200
    rest.post(f"/v1/api-keys/{created['apiKey']['id']}:revoke", json={})
    refused = httpx.post(f"{mesh.edge_url}/v1/tokens", json={}, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert refused.status_code == 401


def test_public_keys_are_published_without_credentials(mesh: LocalMesh) -> None:
    response = httpx.get(f"{mesh.edge_url}/v1/jwks", timeout=10)
    assert response.status_code == 200
    keys = response.json()["keys"]
    assert keys and all(k["kty"] == "EC" and k["alg"] == "ES256" and k["kid"] and "d" not in k for k in keys)


def test_a_forged_token_is_refused(mesh: LocalMesh) -> None:
    header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode()).rstrip(b"=").decode()
    body = base64.urlsafe_b64encode(json.dumps({"sub": "key:x", "role": "admin", "exp": 9999999999}).encode()).rstrip(b"=").decode()
    response = httpx.get(f"{mesh.edge_url}/v1/api-keys", headers={"Authorization": f"Bearer {header}.{body}."}, timeout=10)
    assert response.status_code == 401


def test_a_rotated_signing_key_is_honoured_at_the_edge_at_once(mesh: LocalMesh, admin_key: str) -> None:
    """The key that signs after a rotation was in the JWKS before it: the edge (which caches the JWKS 5 s) never
    refuses the first new tokens. A rotation right after the previous one (or a fresh start) waits for that."""
    admin = {"Authorization": f"Bearer {admin_key}"}
    published = {k["kid"] for k in httpx.get(f"{mesh.edge_url}/v1/jwks", timeout=10).json()["keys"]}
    deadline = time.monotonic() + 60
    while True:
        rotated = httpx.post(f"{mesh.edge_url}/v1/signing-keys:rotate", json={}, headers=admin, timeout=10)
        if rotated.status_code == 200:
            break
        # A mesh younger than the announcement time refuses, saying when to try again.
        assert rotated.status_code == 400, rotated.text
        assert rotated.json()["details"][0]["reason"] == "SIGNING_KEY_NOT_ANNOUNCED"
        assert time.monotonic() < deadline
        time.sleep(min(float(rotated.headers["retry-after"]), 5.0))
    kid = rotated.json()["kid"]
    assert kid in published
    exchange = httpx.post(f"{mesh.edge_url}/v1/tokens", json={}, headers=admin, timeout=10)
    token = exchange.json()["token"]
    head = token.split(".")[0]
    assert json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))["kid"] == kid
    # At once, through jwt_authn at the edge and the service's own check.
    response = httpx.get(f"{mesh.edge_url}/v1/tools", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert response.status_code == 200, response.text
    again = httpx.post(f"{mesh.edge_url}/v1/signing-keys:rotate", json={}, headers=admin, timeout=10)
    assert again.status_code == 400 and again.json()["details"][0]["reason"] == "SIGNING_KEY_NOT_ANNOUNCED"
    assert int(again.headers["retry-after"]) >= 1
