"""How a client proves who it is: a short-lived token exchanged for the API key when the edge offers it, else the key."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

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
    """A bearer token and when it stops being accepted (clock seconds: wall clock, so it can be kept between runs)."""

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


class TokenFile:
    """Tokens kept between CLI runs (mode 0600), one per edge URL and key, the key itself never written."""

    def __init__(self, path: Path, url: str, api_key: str) -> None:
        self.path = path
        self.slot = hashlib.sha256(f"{url}\n{api_key}".encode()).hexdigest()

    def _read(self) -> dict[str, dict[str, float | str]]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def load(self) -> Token | None:
        entry = self._read().get(self.slot)
        try:
            return Token(str(entry["value"]), float(entry["expires_at"]), float(entry["lifetime"])) if entry else None
        except (KeyError, TypeError, ValueError):
            return None

    def save(self, token: Token | None) -> None:
        """Stores (or with None forgets) this slot's token and drops expired ones; a cache that cannot be written is
        only a cache."""
        now = time.time()
        data = {k: v for k, v in self._read().items() if isinstance(v, dict) and float(v.get("expires_at", 0)) > now}
        data.pop(self.slot, None)
        if token is not None:
            data[self.slot] = {"value": token.value, "expires_at": token.expires_at, "lifetime": token.lifetime}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                json.dump(data, out)
        except OSError:
            pass


class ApiKeyAuth(httpx.Auth):
    """httpx auth flow: exchange the key once, reuse the token until shortly before expiry, retry once on 401."""

    def __init__(
        self, api_key: str, *, exchange: bool = True, clock: Callable[[], float] = time.time, cache: TokenFile | None = None
    ) -> None:
        self.api_key = api_key
        self.exchange = exchange and bool(api_key)
        self.cache = cache
        self.token: Token | None = cache.load() if cache and self.exchange else None
        self._clock = clock

    def _keep(self, token: Token | None) -> None:
        self.token = token
        if self.cache is not None:
            self.cache.save(token)

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
                self._keep(parse_token(answer.json(), self._clock()))
            else:
                # A refused key (401/403) or an edge error: let the real request carry the key and report it.
                self._keep(None)
        bearer = self.token.value if self.exchange and self.token else self.api_key
        request.headers["Authorization"] = f"Bearer {bearer}"
        response = yield request
        if response.status_code == 401 and self.exchange and self.token is not None:
            # Revoked or rotated signing key: one fresh exchange, then the answer stands.
            self._keep(None)
            answer = yield self._exchange_request(request)
            answer.read()
            if answer.status_code == 200:
                token = parse_token(answer.json(), self._clock())
                self._keep(token)
                request.headers["Authorization"] = f"Bearer {token.value}"
                yield request
