"""The WebSocket edge (`/ws` through Envoy): subscribe to event types and receive them as JSON."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import re
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlparse

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from services.gateway.auth import Authenticator, bearer
from services.gateway.dashboard_files import process_request
from services.gateway.events import EVENT_TYPES, EventFeed, FeedEvent, SlowSubscriber
from services.runtime.errors import DomainError, Unauthenticated
from services.runtime.roles import role_of

log = logging.getLogger("mcpmesh.websocket")
MAX_MESSAGE = 16 * 1024  # a subscription is a few hundred bytes; larger messages get an error frame
MAX_FRAME = 1024 * 1024  # beyond this the library closes the connection (1009) before we see the message
MAX_SESSIONS_PER_IDENTITY = 10  # one identity cannot hold the gateway's connections
MAX_DEPTH = 8
MAX_WORKFLOWS = 50  # workflow ids in one subscription's filter or resume map
_ID = re.compile(r"[A-Za-z0-9._:@=+-]+")  # nesting of arrays and objects in a client message
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


@dataclass(frozen=True)
class Subscription:
    """What a client asked for: event types, optionally only some workflows, and workflows to resume after the
    last sequence it saw (`{"resume": {"<workflow id>": 12}}` replays 13 onwards, then follows live)."""

    types: set[str]
    workflow_ids: frozenset[str] = frozenset()
    resume: dict[str, int] = field(default_factory=dict)


def _is_id(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= 128 and _ID.fullmatch(value) is not None


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
                subscription = self._parse(raw)
                if isinstance(subscription, str):
                    await connection.send(json.dumps({"type": "error", "reason": "INVALID_MESSAGE", "message": subscription}))
                    continue
                types = subscription.types
                if pump is not None:
                    pump.cancel()
                pump = None
                acked = asyncio.Event()
                if types:
                    ready = asyncio.Event()
                    pump = asyncio.create_task(self._pump(connection, subscription, ready, acked))
                    # Acknowledge once the feed is open, so no event after the ack is missed.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(ready.wait(), 10)
                await connection.send(json.dumps({"type": "subscribed", "types": sorted(types)}))
                acked.set()
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
    def _parse(raw: str | bytes) -> Subscription | str:
        """The subscription, or an error message naming the bad field."""
        if len(raw) > MAX_MESSAGE:
            return f"message: must be at most {MAX_MESSAGE} bytes"
        if nesting(raw) > MAX_DEPTH:
            return f"message: nested deeper than {MAX_DEPTH} levels"
        try:
            message = json.loads(raw)
        except (ValueError, RecursionError):
            return "message is not JSON"
        if not isinstance(message, dict) or message.get("action") not in {"subscribe", "unsubscribe"}:
            return "action: must be \"subscribe\" or \"unsubscribe\""
        if message["action"] == "unsubscribe":
            return Subscription(set())
        types = message.get("types", list(EVENT_TYPES))
        if not isinstance(types, list) or not all(t in EVENT_TYPES for t in types):
            return f"types: must be a list of {', '.join(EVENT_TYPES)}"
        workflow_ids = message.get("workflow_ids", [])
        if not isinstance(workflow_ids, list) or len(workflow_ids) > MAX_WORKFLOWS or not all(_is_id(w) for w in workflow_ids):
            return f"workflow_ids: must be a list of at most {MAX_WORKFLOWS} workflow ids"
        resume = message.get("resume", {})
        if (not isinstance(resume, dict) or len(resume) > MAX_WORKFLOWS or not all(_is_id(w) for w in resume)
                or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in resume.values())):
            return f"resume: must map at most {MAX_WORKFLOWS} workflow ids to the last sequence seen (an integer >= 0)"
        if resume:
            types = [*types, "workflow_update"]
        return Subscription(set(types), frozenset(workflow_ids), dict(resume))

    async def _pump(
        self, connection: ServerConnection, subscription: Subscription, ready: asyncio.Event, acked: asyncio.Event
    ) -> None:
        """The shared live feed, filtered; workflows being resumed come from their own watch (complete, in order)."""
        counter = itertools.count(1)

        async def send(event: FeedEvent) -> None:
            await connection.send(event.workflow_frame if event.type == "workflow_update" else event.frame(next(counter)))

        async def replay(workflow_id: str, after: int) -> None:
            await acked.wait()  # replayed events follow the "subscribed" ack, like live ones
            try:
                async for event in self._feed.workflow_events(workflow_id, after):
                    await send(event)
            except DomainError as error:
                await connection.send(json.dumps({"type": "error", "reason": error.reason, "message": error.message}))

        replays = [asyncio.create_task(replay(w, n)) for w, n in subscription.resume.items()]
        try:
            async for event in self._feed.subscribe(subscription.types, ready):
                if event.type == "workflow_update":
                    workflow_id = event.data.get("workflow_id", "")
                    if workflow_id in subscription.resume:
                        continue
                    if subscription.workflow_ids and workflow_id not in subscription.workflow_ids:
                        continue
                await send(event)
        except SlowSubscriber:
            # Dropped so that the other subscribers are not slowed down; the client reconnects and resumes.
            await connection.close(1008, "SUBSCRIBER_TOO_SLOW")
        finally:
            for task in replays:
                task.cancel()
