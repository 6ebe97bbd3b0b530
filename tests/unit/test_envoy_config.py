"""Tests for rendering envoy.yaml with a local mesh's ports."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml

from services.launcher.envoy_config import DESCRIPTOR, STATIC_CONFIG, Instance, Ports, render

PORTS = Ports(edge=18080, mesh=20000, admin=19901, gateway=13000, agents=13001, tools=13002, workflows=13003, websocket=13100)


def collect(node: Any, key: str) -> list[Any]:
    found: list[Any] = []
    if isinstance(node, dict):
        for name, value in node.items():
            if name == key:
                found.append(value)
            found.extend(collect(value, key))
    elif isinstance(node, list):
        for value in node:
            found.extend(collect(value, key))
    return found


def socket_addresses(node: Any) -> list[dict[str, Any]]:
    return collect(node, "socket_address")


def test_every_port_is_rewritten() -> None:
    static = yaml.safe_load(STATIC_CONFIG.read_text())
    rendered = yaml.safe_load(render(PORTS))
    before = collect(static, "port_value")
    after = collect(rendered, "port_value")
    assert sorted(before) == sorted(asdict(Ports()).values())  # the static file uses each default port once
    assert sorted(after) == sorted(asdict(PORTS).values())
    assert not set(after) & set(asdict(Ports()).values())


def test_each_port_goes_to_its_role() -> None:
    rendered = yaml.safe_load(render(PORTS))
    listeners = {
        listener["name"]: listener["address"]["socket_address"]["port_value"]
        for listener in rendered["static_resources"]["listeners"]
    }
    assert sorted(listeners.values()) == sorted([PORTS.edge, PORTS.mesh])
    assert rendered["admin"]["address"]["socket_address"]["port_value"] == PORTS.admin
    clusters = {
        cluster["name"]: collect(cluster, "port_value") for cluster in rendered["static_resources"]["clusters"]
    }
    for service in ("gateway", "agents", "tools", "workflows"):
        assert [PORTS.service(service)] in clusters.values(), service
    assert [PORTS.websocket] in clusters.values()


def test_wildcard_address_becomes_loopback() -> None:
    static = yaml.safe_load(STATIC_CONFIG.read_text())
    assert "0.0.0.0" in [a["address"] for a in socket_addresses(static)]
    rendered = yaml.safe_load(render(PORTS))
    assert {a["address"] for a in socket_addresses(rendered)} == {"127.0.0.1"}
    assert "0.0.0.0" not in render(PORTS)


def test_edge_host_can_be_chosen() -> None:
    rendered = yaml.safe_load(render(PORTS, edge_host="0.0.0.0"))
    edge = [a for a in socket_addresses(rendered) if a["port_value"] == PORTS.edge]
    assert [a["address"] for a in edge] == ["0.0.0.0"]


def test_descriptor_path_is_absolute_and_exists() -> None:
    rendered = yaml.safe_load(render(PORTS))
    [path] = collect(rendered, "proto_descriptor")
    assert Path(path).is_absolute()
    assert Path(path).is_file()
    assert Path(path) == DESCRIPTOR


def test_default_ports_render_unchanged_ports() -> None:
    rendered = yaml.safe_load(render(Ports()))
    assert sorted(collect(rendered, "port_value")) == sorted(asdict(Ports()).values())


def test_free_ports_are_distinct_and_nonzero() -> None:
    ports = asdict(Ports.free())
    assert len(set(ports.values())) == len(ports)
    assert all(port > 0 for port in ports.values())


def test_several_instances_become_several_endpoints() -> None:
    ports = Ports.free()
    instances = [
        Instance("agents", "agents", ports.agents),
        Instance("agents-2", "agents", 40001),
        Instance("gateway", "gateway", ports.gateway, ports.websocket),
        Instance("gateway-2", "gateway", 40002, 40003),
    ]
    config = yaml.safe_load(render(ports, instances=instances))
    clusters = {c["name"]: c for c in config["static_resources"]["clusters"]}

    def endpoint_ports(name: str) -> list[int]:
        [group] = clusters[name]["load_assignment"]["endpoints"]
        return [e["endpoint"]["address"]["socket_address"]["port_value"] for e in group["lb_endpoints"]]

    assert endpoint_ports("agents") == [ports.agents, 40001]
    assert endpoint_ports("gateway") == [ports.gateway, 40002]
    assert endpoint_ports("gateway_ws") == [ports.websocket, 40003]
    assert endpoint_ports("tools") == [ports.tools]
