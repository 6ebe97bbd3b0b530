"""Typed, frozen configuration read once from the environment at start-up."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

DEFAULT_PORTS = {"gateway": 3000, "agents": 3001, "tools": 3002, "workflows": 3003}
VERSION = "0.1.0"


def _setting(env: str, help: str, default: Any = None, **kwargs: Any) -> Any:
    if "default_factory" in kwargs:
        return field(metadata={"env": env, "help": help}, **kwargs)
    return field(default=default, metadata={"env": env, "help": help})


@dataclass(frozen=True)
class Config:
    """Settings of one service process; each field names its environment variable."""

    service: str
    port: int = _setting("MCPMESH_PORT", "gRPC port; 0 picks a free one", 0)
    host: str = _setting("MCPMESH_HOST", "address the gRPC server binds", "127.0.0.1")
    data_dir: Path = _setting("MCPMESH_DATA_DIR", "folder for databases, keys and checkpoints", Path(".mcpmesh"))
    mesh_address: str = _setting("MCPMESH_MESH_ADDRESS", "Envoy mesh listener other services are called through", "127.0.0.1:10000")
    envoy_admin_url: str = _setting("MCPMESH_ENVOY_ADMIN_URL", "Envoy admin, read for instance health", "http://127.0.0.1:9901")
    workspace_roots: tuple[Path, ...] = _setting(
        "MCPMESH_WORKSPACE_ROOTS", "folders file tools and agents may read, separated by ':'", default_factory=lambda: (Path.cwd(),)
    )
    log_level: str = _setting("MCPMESH_LOG_LEVEL", "DEBUG, INFO, WARNING or ERROR", "INFO")
    grace_seconds: float = _setting("MCPMESH_GRACE_SECONDS", "time in-flight calls get to finish on SIGTERM", 10.0)
    drain_seconds: float = _setting("MCPMESH_DRAIN_SECONDS", "time NOT_SERVING is shown before the listener closes", 1.0)
    ws_port: int = _setting("MCPMESH_WS_PORT", "gateway only: WebSocket port behind Envoy's /ws route", 3100)
    rate_limit_per_second: float = _setting("MCPMESH_RATE_LIMIT", "gateway only: requests per second per API key", 50.0)
    rate_limit_burst: int = _setting("MCPMESH_RATE_BURST", "gateway only: burst size per API key", 200)
    max_files: int = _setting("MCPMESH_MAX_FILES", "most files an agent or tool reads in one call", 20000)

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
                values[f.name] = _parse(f.name, raw)
            except ValueError as exc:
                raise SystemExit(f"{name}={raw!r} is not valid: {exc}") from exc
        return cls(**values)

    @classmethod
    def describe(cls) -> list[tuple[str, str]]:
        """(variable, help) pairs, for the README and --help."""
        return [(f.metadata["env"], f.metadata["help"]) for f in fields(cls) if "env" in f.metadata]


def _parse(name: str, raw: str) -> Any:
    if name in {"port", "ws_port", "rate_limit_burst", "max_files"}:
        value = int(raw)
        if not 0 <= value <= 65535 and name.endswith("port"):
            raise ValueError("not a port number")
        return value
    if name in {"grace_seconds", "drain_seconds", "rate_limit_per_second"}:
        return float(raw)
    if name == "data_dir":
        return Path(raw)
    if name == "workspace_roots":
        return tuple(Path(p).resolve() for p in raw.split(os.pathsep) if p)
    if name == "log_level":
        if raw.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("expected DEBUG, INFO, WARNING or ERROR")
        return raw.upper()
    return raw
