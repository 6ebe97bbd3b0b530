"""The CLI's auth: key-for-token exchange when the edge offers it, refresh before expiry, the key itself otherwise."""

from __future__ import annotations

import json

import httpx

from clients.credentials import TOKEN_PATH, ApiKeyAuth, parse_token


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def edge(exchange_status: int = 200, lifetime: int = 300) -> tuple[list[tuple[str, str]], httpx.MockTransport]:
    seen: list[tuple[str, str]] = []
    issued = iter(range(1, 100))

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == TOKEN_PATH:
            # The key is the exchange's own credential; the body is the empty CreateTokenRequest.
            assert request.headers["authorization"] == "Bearer secret-key" and json.loads(request.content) == {}
            seen.append((TOKEN_PATH, ""))
        else:
            seen.append((request.url.path, request.headers.get("authorization", "")))
        if request.url.path == TOKEN_PATH:
            if exchange_status != 200:
                return httpx.Response(exchange_status, json={"code": 5, "message": "unknown path"})
            return httpx.Response(200, json={"token": f"jwt-{next(issued)}", "expiresIn": f"{lifetime}s"})
        return httpx.Response(200, json={})

    return seen, httpx.MockTransport(handle)


def test_token_is_exchanged_once_and_refreshed_before_expiry() -> None:
    clock = Clock()
    seen, transport = edge(lifetime=300)
    with httpx.Client(transport=transport, auth=ApiKeyAuth("secret-key", clock=clock), base_url="http://edge") as client:
        client.get("/v1/tools")
        clock.now += 200  # 100 s left: still more than the 60 s margin
        client.get("/v1/tools")
        clock.now += 50  # 50 s left: refresh first
        client.get("/v1/tools")
    assert seen == [
        (TOKEN_PATH, ""), ("/v1/tools", "Bearer jwt-1"), ("/v1/tools", "Bearer jwt-1"),
        (TOKEN_PATH, ""), ("/v1/tools", "Bearer jwt-2"),
    ]


def test_edge_without_exchange_gets_the_key_and_is_asked_once() -> None:
    seen, transport = edge(exchange_status=404)
    with httpx.Client(transport=transport, auth=ApiKeyAuth("secret-key"), base_url="http://edge") as client:
        client.get("/v1/tools")
        client.get("/v1/tools")
    assert seen == [(TOKEN_PATH, ""), ("/v1/tools", "Bearer secret-key"), ("/v1/tools", "Bearer secret-key")]


def test_a_refused_token_is_exchanged_again_once() -> None:
    seen: list[str] = []
    tokens = iter(["old", "new"])

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(TOKEN_PATH if request.url.path == TOKEN_PATH else request.headers["authorization"])
        if request.url.path == TOKEN_PATH:
            return httpx.Response(200, json={"token": next(tokens), "expireTime": "2999-01-01T00:00:00Z"})
        return httpx.Response(401 if request.headers["authorization"] == "Bearer old" else 200, json={})

    with httpx.Client(transport=httpx.MockTransport(handle), auth=ApiKeyAuth("secret-key"), base_url="http://edge") as client:
        assert client.get("/v1/tools").status_code == 200
    assert seen == [TOKEN_PATH, "Bearer old", TOKEN_PATH, "Bearer new"]


def test_parse_token_needs_token_and_lifetime() -> None:
    assert parse_token({"token": "t", "expiresIn": "90s"}, 10.0).expires_at == 100.0
    for bad in ({}, {"token": ""}, {"token": "t"}, {"token": "t", "expiresIn": "0s"}, []):
        try:
            parse_token(bad, 0.0)
        except ValueError:
            continue
        raise AssertionError(f"accepted {bad}")
