"""Loads envoy/envoy.yaml and rewrites its ports (and descriptor path) for a local run."""

from __future__ import annotations

import socket
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
STATIC_CONFIG = REPO / "envoy" / "envoy.yaml"
DESCRIPTOR = REPO / "envoy" / "mcpmesh.pb"


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@dataclass(frozen=True)
class Ports:
    """Every port of a local mesh; the defaults are the design's."""

    edge: int = 8080
    mesh: int = 10000
    admin: int = 9901
    gateway: int = 3000
    agents: int = 3001
    tools: int = 3002
    workflows: int = 3003
    websocket: int = 3100

    @classmethod
    def free(cls) -> Ports:
        """Free loopback ports, for tests and benchmarks next to a running `make up`."""
        return cls(*free_ports(8))

    def service(self, name: str) -> int:
        return int(getattr(self, name))


@dataclass(frozen=True)
class Instance:
    """One process of a service: its name ("agents", "agents-2"), its gRPC port, and for the gateway its WebSocket port."""

    name: str
    service: str
    port: int
    websocket_port: int = 0


def render(ports: Ports, *, instances: Sequence[Instance] = (), edge_host: str = "127.0.0.1") -> str:
    """The static config with its ports rewritten; a service with several instances gets one endpoint each."""
    defaults = asdict(Ports())
    mapping = {defaults[name]: value for name, value in asdict(ports).items()}
    config = yaml.safe_load(STATIC_CONFIG.read_text())

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            address = node.get("address")
            if "port_value" in node and node["port_value"] in mapping:
                node["port_value"] = mapping[node["port_value"]]
                if address == "0.0.0.0":
                    node["address"] = edge_host
            if "proto_descriptor" in node:
                node["proto_descriptor"] = str(DESCRIPTOR)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(config)
    endpoints: dict[str, list[int]] = {}
    for instance in instances:
        endpoints.setdefault(instance.service, []).append(instance.port)
        if instance.websocket_port:
            endpoints.setdefault("gateway_ws", []).append(instance.websocket_port)
    for cluster in config["static_resources"]["clusters"]:
        if cluster["name"] in endpoints:
            cluster["load_assignment"]["endpoints"] = [{"lb_endpoints": [
                {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}}
                for port in endpoints[cluster["name"]]
            ]}]
    return yaml.safe_dump(config, sort_keys=False)
