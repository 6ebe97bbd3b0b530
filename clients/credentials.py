"""How a client proves who it is: a short-lived token exchanged for the API key when the edge offers it, else the key."""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from datetime import datetime

import httpx

# The gateway's key-for-token exchange (GatewayService.CreateToken): the key is the call's own credential, the answer
# {"token", "expireTime"}. An edge without it answers 404 (unknown REST path), 405 or 501, and the client then sends
# the key itself, which the edge also accepts as `Authorization: Bearer <key>`.
TOKEN_PATH = "/v1/tokens"
NOT_OFFERED = {404, 405, 501}
# Refresh this long before expiry (or at half the lifetime for very short tokens), so a request never carries a
# token that expires on its way.
REFRESH_MARGIN_S = 60.0


@dataclass(frozen=True)
class Token:
    """A bearer token and when it stops being accepted (monotonic seconds)."""

    value: str
    expires_at: float
    lifetime: float

    def fresh(self, now: float) -> bool:
        return now < self.expires_at - min(REFRESH_MARGIN_S, self.lifetime / 2)


def parse_token(body: object, now: float) -> Token:
    """Reads the exchange answer: {"token": ..., "expiresIn": "300s"} or {"token": ..., "expireTime": RFC 3339}."""
    if not isinstance(body, dict) or not isinstance(body.get("token"), str) or not body["token"]:
        raise ValueError("token exchange answered without a token")
    lifetime = 0.0
    if isinstance(body.get("expiresIn"), str | int | float):
        lifetime = float(str(body["expiresIn"]).removesuffix("s"))
    elif isinstance(body.get("expireTime"), str):
        expire = datetime.fromisoformat(body["expireTime"].replace("Z", "+00:00"))
        lifetime = expire.timestamp() - time.time()
    if lifetime <= 0:
        raise ValueError("token exchange answered without a lifetime")
    return Token(body["token"], now + lifetime, lifetime)


class ApiKeyAuth(httpx.Auth):
    """httpx auth flow: exchange the key once, reuse the token until shortly before expiry, retry once on 401."""

    def __init__(self, api_key: str, *, exchange: bool = True, clock: Callable[[], float] = time.monotonic) -> None:
        self.api_key = api_key
        self.exchange = exchange and bool(api_key)
        self.token: Token | None = None
        self._clock = clock

    def _exchange_request(self, request: httpx.Request) -> httpx.Request:
        headers = {k: v for k, v in request.headers.items() if k.lower().startswith("x-client")}
        headers["Authorization"] = f"Bearer {self.api_key}"
        return httpx.Request("POST", request.url.copy_with(path=TOKEN_PATH, query=None), headers=headers, json={})

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if not self.api_key:
            yield request
            return
        if self.exchange and (self.token is None or not self.token.fresh(self._clock())):
            answer = yield self._exchange_request(request)
            answer.read()
            if answer.status_code in NOT_OFFERED:
                self.exchange = False  # this edge has no exchange: send the key from now on
            elif answer.status_code == 200:
                self.token = parse_token(answer.json(), self._clock())
            else:
                # A refused key (401/403) or an edge error: let the real request carry the key and report it.
                self.token = None
        bearer = self.token.value if self.exchange and self.token else self.api_key
        request.headers["Authorization"] = f"Bearer {bearer}"
        response = yield request
        if response.status_code == 401 and self.exchange and self.token is not None:
            # Revoked or rotated signing key: one fresh exchange, then the answer stands.
            self.token = None
            answer = yield self._exchange_request(request)
            answer.read()
            if answer.status_code == 200:
                self.token = parse_token(answer.json(), self._clock())
                request.headers["Authorization"] = f"Bearer {self.token.value}"
                yield request
