"""The WebSocket edge (`/ws` through Envoy): subscribe to event types and receive them as JSON."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from urllib.parse import parse_qs, urlparse

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from services.gateway.auth import Authenticator, bearer
from services.gateway.dashboard_files import process_request
from services.gateway.events import EVENT_TYPES, EventFeed, SlowSubscriber
from services.runtime.errors import DomainError, Unauthenticated
from services.runtime.roles import role_of

log = logging.getLogger("mcpmesh.websocket")
MAX_MESSAGE = 16 * 1024  # a subscription is a few hundred bytes; larger messages get an error frame
MAX_FRAME = 1024 * 1024  # beyond this the library closes the connection (1009) before we see the message
MAX_SESSIONS_PER_IDENTITY = 10  # one identity cannot hold the gateway's connections
MAX_DEPTH = 8  # nesting of arrays and objects in a client message
SUBSCRIBE_METHOD = "/mcpmesh.gateway.v1.GatewayService/StreamEvents"  # the WebSocket needs the role of this RPC


def _token(connection: ServerConnection) -> str:
    """Browsers cannot set headers on a WebSocket, so `?token=` is accepted too."""
    request = connection.request
    if request is None:
        return ""
    token = bearer(request.headers.get("Authorization"))
    return token or parse_qs(urlparse(request.path).query).get("token", [""])[0]


def nesting(raw: str | bytes) -> int:
    """The deepest nesting of arrays and objects in a JSON text, counted before parsing (json.loads recurses)."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


class WebSocketEdge:
    def __init__(self, auth: Authenticator, feed: EventFeed) -> None:
        self._auth = auth
        self._feed = feed
        self._role = role_of(*SUBSCRIBE_METHOD.strip("/").split("/"))
        self._sessions: dict[str, int] = {}  # open connections per identity

    async def start(self, host: str, port: int) -> Server:
        # Plain GETs on this port are the dashboard's files (same origin as the API through the edge).
        return await serve(self._session, host, port, ping_interval=20, max_size=MAX_FRAME, process_request=process_request)

    async def _session(self, connection: ServerConnection) -> None:
        try:
            who = await self._auth.check(SUBSCRIBE_METHOD, self._role, _token(connection))
        except DomainError as error:
            await connection.send(json.dumps({"type": "error", "reason": error.reason, "message": error.message}))
            await connection.close(4401 if isinstance(error, Unauthenticated) else 4403, error.reason)
            return
        principal = who.principal if who is not None else ""
        if self._sessions.get(principal, 0) >= MAX_SESSIONS_PER_IDENTITY:
            message = f"at most {MAX_SESSIONS_PER_IDENTITY} WebSocket connections per identity"
            await connection.send(json.dumps({"type": "error", "reason": "TOO_MANY_CONNECTIONS", "message": message}))
            await connection.close(4429, "TOO_MANY_CONNECTIONS")
            return
        self._sessions[principal] = self._sessions.get(principal, 0) + 1
        pump: asyncio.Task[None] | None = None
        try:
            async for raw in connection:
                types = self._parse(raw)
                if isinstance(types, str):
                    await connection.send(json.dumps({"type": "error", "reason": "INVALID_MESSAGE", "message": types}))
                    continue
                if pump is not None:
                    pump.cancel()
                pump = None
                if types:
                    ready = asyncio.Event()
                    pump = asyncio.create_task(self._pump(connection, types, ready))
                    # Acknowledge once the feed is open, so no event after the ack is missed.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(ready.wait(), 10)
                await connection.send(json.dumps({"type": "subscribed", "types": sorted(types)}))
        except ConnectionClosed:
            pass
        finally:
            self._sessions[principal] -= 1
            if not self._sessions[principal]:
                del self._sessions[principal]
            if pump is not None:
                pump.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pump

    @staticmethod
    def _parse(raw: str | bytes) -> set[str] | str:
        """The subscribed types, or an error message naming the bad field."""
        if len(raw) > MAX_MESSAGE:
            return f"message: must be at most {MAX_MESSAGE} bytes"
        if nesting(raw) > MAX_DEPTH:
            return f"message: nested deeper than {MAX_DEPTH} levels"
        try:
            message = json.loads(raw)
        except ValueError:
            return "message is not JSON"
        if not isinstance(message, dict) or message.get("action") not in {"subscribe", "unsubscribe"}:
            return "action: must be \"subscribe\" or \"unsubscribe\""
        if message["action"] == "unsubscribe":
            return set()
        types = message.get("types", list(EVENT_TYPES))
        if not isinstance(types, list) or not all(t in EVENT_TYPES for t in types):
            return f"types: must be a list of {', '.join(EVENT_TYPES)}"
        return set(types)

    async def _pump(self, connection: ServerConnection, types: set[str], ready: asyncio.Event) -> None:
        try:
            async for event in self._feed.subscribe(types, ready):
                body = {"type": event.type, "time": event.created.isoformat(), "data": event.data}
                await connection.send(json.dumps(body))
        except SlowSubscriber:
            # Dropped so that the other subscribers are not slowed down; the client reconnects and resumes.
            await connection.close(1008, "SUBSCRIBER_TOO_SLOW")
