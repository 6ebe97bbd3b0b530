"""External MCP servers: registration rules (stdio allow list, SSRF checks), definition pinning, and the tools
they add to the registry under the server's prefix (`<server>.<tool>`).

Registrations and pins live in the registry store, so every tools instance restores them at start-up and
follows changes made on another instance (the store's version number). Each instance keeps its own sessions."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

from services.runtime.clock import utcnow
from services.runtime.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from services.tools.execution import ToolOutput
from services.tools.mcp_client import RemoteTool
from services.tools.registry import ToolAnnotations, ToolDefinition
from services.tools.registry_store import RegistryStore

KIND = "mcp_server"
SERVER_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
NOT_APPROVED = "not-approved"
CONNECT_SECONDS = 20.0
SYNC_SECONDS = 1.0  # how stale another instance's registrations may be seen
# Cloud metadata endpoints: refused even when private ranges are allowed.
METADATA_ADDRESSES = frozenset({"169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200"})


class Connection(Protocol):
    """What the registry needs from a session to an external server (adapter: mcp_client.SdkConnection)."""

    state: str
    last_error: str
    tools: list[RemoteTool]

    def start(self) -> None: ...

    async def wait_ready(self, timeout: float) -> bool: ...

    async def close(self) -> None: ...

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> ToolOutput: ...


Connector = Callable[["McpServerSpec"], Connection]


@dataclass(frozen=True)
class McpServerSpec:
    name: str
    transport: str  # "stdio" or "http"
    command: tuple[str, ...] = ()
    url: str = ""
    created: dt.datetime = field(default_factory=lambda: utcnow())
    approved: dict[str, str] = field(default_factory=dict, compare=False)  # remote tool name -> pinned hash

    def body(self) -> dict[str, Any]:
        return {
            "transport": self.transport, "command": list(self.command), "url": self.url,
            "created": self.created.isoformat(), "approved": dict(self.approved),
        }

    @classmethod
    def of(cls, name: str, body: dict[str, Any]) -> McpServerSpec:
        return cls(
            name, body["transport"], tuple(body.get("command") or ()), body.get("url", ""),
            dt.datetime.fromisoformat(body["created"]), dict(body.get("approved") or {}),
        )


@dataclass(frozen=True)
class ServerRules:
    """What may be registered: stdio commands from an allow list; URLs whose addresses are public, unless allowed."""

    stdio_commands: tuple[str, ...] = ()
    allowed_networks: tuple[str, ...] = ()  # hosts or CIDRs exempt from the private-address rule (tests: 127.0.0.1)

    def check_name(self, name: str) -> None:
        if not SERVER_NAME.match(name):
            raise InvalidArgument.field("server.name", "must be 1-32 lowercase letters, digits, '_' or '-', starting with a letter")

    def check_command(self, command: Sequence[str]) -> None:
        if not command or not command[0]:
            raise InvalidArgument.field("server.command", "is required for a stdio server")
        if any("\0" in part for part in command) or len(command) > 64 or any(len(part) > 1024 for part in command):
            raise InvalidArgument.field("server.command", "holds a NUL byte, too many or too long arguments")
        if command[0] not in self.stdio_commands:
            raise InvalidArgument.field(
                "server.command", "is not in the allow list of stdio commands (MCPMESH_MCP_STDIO_COMMANDS)",
                reason="MCP_COMMAND_NOT_ALLOWED",
            )

    async def check_url(self, url: str) -> None:
        """SSRF: http(s) only, and every address the host resolves to must be public (or explicitly allowed)."""
        if len(url) > 2048 or "\0" in url:
            raise InvalidArgument.field("server.url", "must be at most 2048 characters without NUL bytes")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidArgument.field("server.url", "must be an http:// or https:// URL with a host")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise InvalidArgument.field("server.url", "has an invalid port") from None
        host = parts.hostname
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port)
        except OSError:
            raise InvalidArgument.field("server.url", "host does not resolve", reason="MCP_URL_UNRESOLVED") from None
        for info in infos:
            address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
            self._check_address(host, address)

    def _check_address(self, host: str, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
        mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
        address = mapped or address
        if str(address) in METADATA_ADDRESSES:
            raise InvalidArgument.field("server.url", "points at a cloud metadata address", reason="MCP_URL_FORBIDDEN")
        if address.is_global:
            return
        if host in self.allowed_networks or any(
            address in ipaddress.ip_network(network, strict=False)
            for network in self.allowed_networks if _is_network(network)
        ):
            return
        raise InvalidArgument.field(
            "server.url", "resolves to a private, loopback, link-local or reserved address (not allowed)",
            reason="MCP_URL_FORBIDDEN",
        )


def _is_network(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True


class Refused:
    """Stands for a stored server that the rules no longer allow: listed as failed, never started."""

    def __init__(self, reason: str) -> None:
        self.state = "failed"
        self.last_error = f"not started: {reason}"
        self.tools: list[RemoteTool] = []

    def start(self) -> None:
        return None

    async def wait_ready(self, timeout: float) -> bool:
        return False

    async def close(self) -> None:
        return None

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> ToolOutput:
        raise FailedPrecondition(self.last_error, reason="MCP_SERVER_NOT_ALLOWED")


@dataclass
class _Server:
    spec: McpServerSpec
    connection: Connection
    # The definitions built for (spec, connection.tools) as they were last seen: a call looks its tool up without
    # rebuilding every definition (and re-hashing it), until the server re-lists or an admin re-pins.
    built: tuple[McpServerSpec, list[RemoteTool], list[ToolDefinition]] | None = None


@dataclass(frozen=True)
class ServerView:
    spec: McpServerSpec
    state: str
    last_error: str
    tools: list[str]


class McpServers:
    """The registered external servers of this instance, kept in step with the store; a ToolSource."""

    def __init__(self, store: RegistryStore, connect: Connector, rules: ServerRules) -> None:
        self._store = store
        self._connect = connect
        self.rules = rules
        self._servers: dict[str, _Server] = {}
        self._version = -1
        self._checked = 0.0
        self._lock = asyncio.Lock()

    async def sync(self, *, force: bool = False) -> None:
        """Opens sessions for registrations made anywhere, closes removed ones, takes new pins."""
        if not force and time.monotonic() - self._checked < SYNC_SECONDS:
            return
        async with self._lock:
            self._checked = time.monotonic()
            version = await self._store.version()
            if version == self._version and not force:
                return
            wanted = {r.name: McpServerSpec.of(r.name, r.body) for r in await self._store.list(KIND)}
            for name in [name for name in self._servers if name not in wanted]:
                await self._servers.pop(name).connection.close()
            for name, spec in wanted.items():
                held = self._servers.get(name)
                if held is None or (held.spec.transport, held.spec.command, held.spec.url) != (spec.transport, spec.command, spec.url):
                    if held is not None:
                        await held.connection.close()
                    connection = await self._allowed(spec) or self._connect(spec)
                    connection.start()
                    self._servers[name] = _Server(spec, connection)
                else:
                    held.spec = spec  # new pins
            self._version = version

    async def _allowed(self, spec: McpServerSpec) -> Connection | None:
        """A stored registration is checked again before it runs: the allow list may have shrunk since, and a
        host may resolve elsewhere now. A refused one stays listed as failed, with the reason."""
        try:
            if spec.transport == "stdio":
                self.rules.check_command(spec.command)
            else:
                await self.rules.check_url(spec.url)
        except InvalidArgument as refused:
            return Refused(refused.message)
        return None

    async def register(self, spec: McpServerSpec) -> ServerView:
        self.rules.check_name(spec.name)
        if spec.transport == "stdio":
            self.rules.check_command(spec.command)
        elif spec.transport == "http":
            await self.rules.check_url(spec.url)
        else:
            raise InvalidArgument.field("server.transport", "must be STDIO or STREAMABLE_HTTP")
        await self.sync(force=True)
        if spec.name in self._servers:
            raise AlreadyExists(f"MCP server {spec.name!r} is already registered", reason="MCP_SERVER_EXISTS")
        connection = self._connect(spec)
        connection.start()
        if not await connection.wait_ready(CONNECT_SECONDS):
            error = connection.last_error or f"no session within {CONNECT_SECONDS:g} s"
            await connection.close()
            raise FailedPrecondition(
                f"MCP server {spec.name!r} could not be reached: {error}", reason="MCP_SERVER_UNREACHABLE",
                metadata={"server": spec.name},
            )
        # Registering is the admin's approval of what the server offers now: pin every definition.
        pinned = McpServerSpec(spec.name, spec.transport, spec.command, spec.url, spec.created, {})
        approved = {tool.name: self._definition(pinned, tool, connection).definition_hash for tool in connection.tools}
        pinned = McpServerSpec(spec.name, spec.transport, spec.command, spec.url, spec.created, approved)
        async with self._lock:
            await self._store.put(KIND, spec.name, pinned.body())
            self._servers[spec.name] = _Server(pinned, connection)
        return self._view(self._servers[spec.name])

    async def remove(self, name: str) -> None:
        if not await self._store.delete(KIND, name):
            raise NotFound(f"MCP server {name!r} is not registered", reason="MCP_SERVER_NOT_FOUND")
        await self.sync(force=True)

    async def approve(self, tool_name: str, definition_hash: str) -> ToolDefinition:
        """Pins the current definition of one external tool, if it is the one the admin saw."""
        await self.sync(force=True)
        for held in self._servers.values():
            for tool in self._definitions(held):
                if tool.name != tool_name:
                    continue
                if definition_hash != tool.definition_hash:
                    raise FailedPrecondition(
                        "definition_hash is not the tool's current definition; get the tool again and review it",
                        reason="TOOL_DEFINITION_MISMATCH", metadata={"tool": tool_name},
                    )
                remote = tool_name.split(".", 1)[1]
                spec = held.spec
                approved = {**spec.approved, remote: definition_hash}
                pinned = McpServerSpec(spec.name, spec.transport, spec.command, spec.url, spec.created, approved)
                async with self._lock:
                    await self._store.put(KIND, spec.name, pinned.body())
                    held.spec = pinned
                return self._definition(pinned, next(t for t in held.connection.tools if t.name == remote), held.connection)
        raise NotFound(f"tool {tool_name!r} is not offered by any MCP server", reason="TOOL_NOT_FOUND")

    async def views(self) -> list[ServerView]:
        await self.sync()
        return [self._view(held) for _, held in sorted(self._servers.items())]

    async def tools(self) -> list[ToolDefinition]:
        await self.sync()
        return [tool for held in self._servers.values() for tool in self._definitions(held)]

    async def close(self) -> None:
        for held in self._servers.values():
            await held.connection.close()
        self._servers.clear()

    def _view(self, held: _Server) -> ServerView:
        names = [f"{held.spec.name}.{tool.name}" for tool in held.connection.tools]
        return ServerView(held.spec, held.connection.state, held.connection.last_error, names)

    def _definitions(self, held: _Server) -> list[ToolDefinition]:
        spec, remote = held.spec, held.connection.tools
        if held.built is None or held.built[0] is not spec or held.built[1] is not remote:
            held.built = (spec, remote, [self._definition(spec, tool, held.connection) for tool in remote])
        return held.built[2]

    @staticmethod
    def _definition(spec: McpServerSpec, tool: RemoteTool, connection: Connection) -> ToolDefinition:
        remote = tool.name

        async def run(arguments: dict[str, Any]) -> ToolOutput:
            return await connection.call_tool(remote, arguments)

        return ToolDefinition(
            name=f"{spec.name}.{tool.name}",
            description=tool.description,
            input_schema=tool.input_schema,
            run=run,
            source="external_mcp",
            server=spec.name,
            annotations=ToolAnnotations(**tool.annotations),
            created=spec.created,
            approved_hash=spec.approved.get(tool.name, NOT_APPROVED),
        )
