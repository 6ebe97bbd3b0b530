"""Typed, frozen configuration read once from the environment at start-up."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from services.runtime.topology import DEFAULT_PORTS, WEBSOCKET_PORT

VERSION = "0.1.0"


def _port(raw: str) -> int:
    value = int(raw)
    if not 0 <= value <= 65535:
        raise ValueError("not a port number")
    return value


def _count(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError("must not be negative")
    return value


def _seconds(raw: str) -> float:
    value = float(raw)
    if value < 0:
        raise ValueError("must not be negative")
    return value


MIN_TOKEN_SECONDS = 10.0  # the edge keeps a key's token up to 2 s (envoy/edge.yaml, mcpmesh.key_cache); clients renew early


def _token_seconds(raw: str) -> float:
    value = _seconds(raw)
    if value < MIN_TOKEN_SECONDS:
        raise ValueError(f"must be at least {MIN_TOKEN_SECONDS:g} s")
    return value


def _roots(raw: str) -> tuple[Path, ...]:
    return tuple(Path(p).resolve() for p in raw.split(os.pathsep) if p)


def _log_level(raw: str) -> str:
    if raw.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ValueError("expected DEBUG, INFO, WARNING or ERROR")
    return raw.upper()


def _role_budgets(raw: str) -> tuple[tuple[str, float, int], ...]:
    from services.runtime.identity import ROLES

    budgets = []
    for part in (p.strip() for p in raw.split(",") if p.strip()):
        role, _, budget = part.partition("=")
        rate, _, burst = budget.partition("/")
        if role not in ROLES:
            raise ValueError(f"{role!r} is not a role ({', '.join(ROLES)})")
        budgets.append((role, _seconds(rate), _count(burst)))
    return tuple(budgets)


def _signing_key_url(raw: str) -> str:
    from services.runtime.signing_keys import key_source

    key_source(raw, Path("."))  # refuse a bad URL at start-up
    return raw


def _state_url(raw: str) -> str:
    from services.runtime.state import StateUrl

    StateUrl.parse(raw)  # refuse unknown schemes at start-up, not at the first store call
    return raw


def _artifacts_url(raw: str) -> str:
    from services.runtime.artifacts import ArtifactsUrl

    ArtifactsUrl.parse(raw)  # refuse unknown schemes and bad bucket names at start-up
    return raw


def _database_connections(raw: str) -> tuple[tuple[str, str], ...]:
    from services.agents.database.inputs import parse_connections

    # A JSON object of name -> postgresql:// URL, checked at start-up; pairs keep the config hashable.
    return tuple(sorted(parse_connections(raw).items()))


def _ratio(raw: str) -> float:
    value = float(raw)
    if not 0.0 <= value <= 1.0:
        raise ValueError("expected a number from 0 to 1")
    return value


def _tracing_mode(raw: str) -> str:
    from services.runtime.tracing import parse_mode

    return parse_mode(raw)


def _words(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _cache_url(raw: str) -> str:
    if raw not in ("", "memory") and not raw.startswith(("redis://", "rediss://")):
        raise ValueError("expected empty, memory or redis://HOST:PORT/DB")
    return raw


def _admin_key(raw: str) -> str:
    if raw and not re.fullmatch(r"mk_[A-Za-z0-9]{1,32}_\S{32,}", raw):
        raise ValueError("expected mk_<id>_<at least 32 random characters>; python -m services.gateway.api_keys prints one")
    return raw


# Settings whose value may hold a credential (a URL with a password, a DSN): a start-up error never prints them.
SECRET_SETTINGS = frozenset({
    "MCPMESH_STATE_URL", "MCPMESH_RATE_LIMIT_URL", "MCPMESH_SIGNING_KEY", "MCPMESH_TOOL_CACHE_URL",
    "MCPMESH_DATABASE_CONNECTIONS", "MCPMESH_ARTIFACTS_URL", "MCPMESH_BOOTSTRAP_ADMIN_KEY",
})


def _setting(env: str, help: str, parse: Callable[[str], Any], default: Any = None, **kwargs: Any) -> Any:
    """A config field read from `env` with `parse`; the parser travels with the field, so none stays a string by accident."""
    metadata = {"env": env, "help": help, "parse": parse}
    if "default_factory" in kwargs:
        return field(metadata=metadata, **kwargs)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class Config:
    """Settings of one service process; each field names its environment variable and its parser."""

    service: str
    port: int = _setting("MCPMESH_PORT", "gRPC port; 0 picks a free one", _port, 0)
    host: str = _setting("MCPMESH_HOST", "address the gRPC server binds", str, "127.0.0.1")
    data_dir: Path = _setting("MCPMESH_DATA_DIR", "folder for databases, keys and checkpoints", Path, Path(".mcpmesh"))
    state_url: str = _setting(
        "MCPMESH_STATE_URL",
        "state store: sqlite:///FILE (one file shared by the services), dynamodb://TABLE_PREFIX?endpoint=URL&region=R; "
        "empty: one SQLite file per service in the data folder",
        _state_url,
        "",
    )
    mesh_address: str = _setting("MCPMESH_MESH_ADDRESS", "Envoy mesh listener other services are called through", str, "127.0.0.1:10000")
    envoy_admin_url: str = _setting("MCPMESH_ENVOY_ADMIN_URL", "Envoy admin, read for instance health", str, "http://127.0.0.1:9901")
    workspace_roots: tuple[Path, ...] = _setting(
        "MCPMESH_WORKSPACE_ROOTS", "folders file tools and agents may read, separated by ':'", _roots,
        default_factory=lambda: (Path.cwd(),),
    )
    log_level: str = _setting("MCPMESH_LOG_LEVEL", "DEBUG, INFO, WARNING or ERROR", _log_level, "INFO")
    grace_seconds: float = _setting("MCPMESH_GRACE_SECONDS", "time in-flight calls get to finish on SIGTERM", _seconds, 10.0)
    drain_seconds: float = _setting("MCPMESH_DRAIN_SECONDS", "time NOT_SERVING is shown before the listener closes", _seconds, 1.0)
    ws_port: int = _setting("MCPMESH_WS_PORT", "gateway only: WebSocket port behind Envoy's /ws route", _port, WEBSOCKET_PORT)
    rate_limit_per_second: float = _setting("MCPMESH_RATE_LIMIT", "gateway and services: requests per second per identity", _seconds, 50.0)
    rate_limit_burst: int = _setting("MCPMESH_RATE_BURST", "gateway and services: burst size per identity", _count, 200)
    rate_limits_per_role: tuple[tuple[str, float, int], ...] = _setting(
        "MCPMESH_RATE_LIMITS", "gateway and services: budgets per role overriding the two above, as ROLE=RATE/BURST "
        "separated by commas (viewer=20/40,admin=100/400)", _role_budgets, (),
    )
    rate_limit_url: str = _setting(
        "MCPMESH_RATE_LIMIT_URL", "gateway and services: where the rate-limit buckets live: empty or memory (each process "
        "its own), redis://HOST:PORT/DB (every instance shares one budget per identity)", _cache_url, "",
    )
    signing_key_url: str = _setting(
        "MCPMESH_SIGNING_KEY", "where the token signing keys live: empty (a 0600 file in the data folder), "
        "file:///PATH or secretsmanager://SECRET_ID?endpoint=URL&region=R", _signing_key_url, "",
    )
    bootstrap_admin_key: str = _setting(
        "MCPMESH_BOOTSTRAP_ADMIN_KEY", "gateway only: an admin key secret (mk_ID_RANDOM) that must exist, for "
        "deployments whose containers keep no file (from a secret store); empty: the first start writes admin.key",
        _admin_key, "",
    )
    token_ttl_seconds: float = _setting("MCPMESH_TOKEN_TTL", "gateway only: lifetime of an identity token (JWT), at least 10 s", _token_seconds, 900.0)
    max_files: int = _setting("MCPMESH_MAX_FILES", "most files an agent or tool reads in one call", _count, 20000)
    workflow_lease_seconds: float = _setting(
        "MCPMESH_WORKFLOW_LEASE", "workflows only: seconds a run lease lives without a heartbeat; another instance "
        "takes the run over after it", _seconds, 10.0,
    )
    workflow_max_active: int = _setting(
        "MCPMESH_WORKFLOW_MAX_ACTIVE", "workflows only: runs one instance holds at once; more wait in the queue", _count, 50,
    )
    checkpoint_retention_seconds: float = _setting(
        "MCPMESH_CHECKPOINT_RETENTION", "workflows only: seconds the checkpoints of an ended workflow are kept",
        _seconds, 7 * 24 * 3600.0,
    )
    tool_timeout_seconds: float = _setting("MCPMESH_TOOL_TIMEOUT", "tools only: seconds one tool execution may take", _seconds, 60.0)
    tool_concurrency: int = _setting("MCPMESH_TOOL_CONCURRENCY", "tools only: tool executions running at once", _count, 16)
    tool_queue: int = _setting(
        "MCPMESH_TOOL_QUEUE", "tools only: executions that may wait for a slot (the ToolExecutionQueue metric); "
        "more are refused with RESOURCE_EXHAUSTED", _count, 64,
    )
    tool_cache_url: str = _setting(
        "MCPMESH_TOOL_CACHE_URL", "tools only: result cache of read-only and idempotent tools: empty or memory "
        "(in-process), redis://HOST:PORT/DB", _cache_url, "",
    )
    tool_cache_seconds: float = _setting("MCPMESH_TOOL_CACHE_SECONDS", "tools only: how long a cached tool result lives", _seconds, 60.0)
    mcp_stdio_commands: tuple[str, ...] = _setting(
        "MCPMESH_MCP_STDIO_COMMANDS", "tools only: commands (comma-separated, exactly as registered) that external "
        "stdio MCP servers may run; empty: none", _words, (),
    )
    mcp_allowed_networks: tuple[str, ...] = _setting(
        "MCPMESH_MCP_ALLOWED_NETWORKS", "tools only: hosts or CIDRs (comma-separated) that streamable HTTP MCP servers "
        "may use although private or loopback; cloud metadata addresses stay refused", _words, (),
    )
    database_connections: tuple[tuple[str, str], ...] = _setting(
        "MCPMESH_DATABASE_CONNECTIONS", "agents only: PostgreSQL databases the Database Analyzer may introspect, a JSON "
        'object of name -> postgresql:// URL ({"shop": "postgresql://reader@db/shop"}); callers pass only the name',
        _database_connections, (),
    )
    tracing: str = _setting(
        "MCPMESH_TRACING", "where spans go: auto (OTLP when MCPMESH_OTLP_ENDPOINT is set, else a file under "
        "the data folder's traces/), otlp, file, console or off", _tracing_mode, "auto",
    )
    otlp_endpoint: str = _setting(
        "MCPMESH_OTLP_ENDPOINT", "OTLP/HTTP collector base URL for traces, e.g. http://127.0.0.1:4318 (the AWS Distro "
        "collector forwards to X-Ray); Envoy's spans go there too", str, "",
    )
    trace_sample: float = _setting(
        "MCPMESH_TRACE_SAMPLE", "share of requests traced (0 to 1): Envoy's edge draws at this rate and every service "
        "follows the traceparent's decision; calls that arrive without one are drawn at the same rate (5 %: X-Ray's own "
        "default rate)", _ratio, 0.05,
    )
    metrics_port: int = _setting("MCPMESH_METRICS_PORT", "Prometheus /metrics port of this process; 0: not served", _port, 0)
    emf_namespace: str = _setting(
        "MCPMESH_EMF_NAMESPACE", "CloudWatch namespace: when set, metrics are also written to standard output as "
        "embedded-metric-format lines", str, "",
    )
    emf_seconds: float = _setting("MCPMESH_EMF_SECONDS", "seconds between CloudWatch EMF lines", _seconds, 60.0)
    bedrock_model_id: str = _setting(
        "MCPMESH_BEDROCK_MODEL_ID", "agents only: Bedrock model id for the agents' model step (ChatBedrockConverse); "
        "empty: no model, the agents return their static analysis and say so", str, "",
    )
    bedrock_region: str = _setting("MCPMESH_BEDROCK_REGION", "agents only: AWS region of Bedrock Runtime", str, "us-east-1")
    bedrock_endpoint_url: str = _setting(
        "MCPMESH_BEDROCK_ENDPOINT_URL", "agents only: Bedrock Runtime endpoint URL; empty: AWS's own for the region", str, "",
    )
    artifacts_url: str = _setting(
        "MCPMESH_ARTIFACTS_URL", "agents only: where agents store documents (generated docs): file:///FOLDER, or "
        "s3://BUCKET/PREFIX?endpoint=URL&region=R; empty: the data folder's artifacts/", _artifacts_url, "",
    )

    @classmethod
    def from_env(cls, service: str, environ: dict[str, str] | None = None) -> Config:
        """Builds the config of `service`; unset variables keep their defaults (port: the design's port)."""
        env = dict(os.environ if environ is None else environ)
        values: dict[str, Any] = {"service": service, "port": DEFAULT_PORTS.get(service, 0)}
        for f in fields(cls):
            name = f.metadata.get("env")
            if not name or name not in env:
                continue
            raw = env[name]
            try:
                values[f.name] = f.metadata["parse"](raw)
            except ValueError as exc:
                shown = name if name in SECRET_SETTINGS else f"{name}={raw!r}"
                raise SystemExit(f"{shown} is not valid: {exc}") from None
        return cls(**values)

    @classmethod
    def describe(cls) -> list[tuple[str, str]]:
        """(variable, help) pairs, for the README and --help."""
        return [(f.metadata["env"], f.metadata["help"]) for f in fields(cls) if "env" in f.metadata]
