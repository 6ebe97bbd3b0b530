"""The one topology: the design's figures, and everyone else reading it rather than keeping a copy."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from services.gateway import system_health
from services.launcher.envoy_config import REPO_ENVOY_DIR, Ports, render, stream_methods
from services.launcher.processes import LocalMesh
from services.runtime import config, mesh, topology


def test_design_figures() -> None:
    assert topology.DEFAULT_PORTS == {"gateway": 3000, "agents": 3001, "tools": 3002, "workflows": 3003}
    assert topology.DEADLINES == {"gateway": 30.0, "agents": 120.0, "tools": 60.0, "workflows": 300.0}
    assert topology.DEFAULT_DEADLINE == 30.0
    assert (topology.EDGE_PORT, topology.EDGE_HTTPS_PORT, topology.ADMIN_PORT) == (8080, 8443, 9901)
    scaling = {s.name: (s.scaling.min_tasks, s.scaling.max_tasks) for s in topology.SERVICES}
    assert scaling == {"gateway": (2, 10), "agents": (2, 20), "tools": (1, 15), "workflows": (2, 25)}


def test_ports_are_distinct() -> None:
    ports = Ports().all()
    assert len(set(ports)) == len(ports)


def test_every_contract_is_in_the_descriptor_set() -> None:
    known = stream_methods(REPO_ENVOY_DIR / "mcpmesh.pb")
    for service in topology.SERVICES:
        assert service.grpc_service in known, service.grpc_service
        assert service.proto_prefix == f"/mcpmesh.{service.name}.v1."


def test_readers_use_the_topology() -> None:
    assert config.DEFAULT_PORTS is topology.DEFAULT_PORTS
    assert mesh.Mesh.deadline("workflows") == 300.0 and mesh.Mesh.deadline("instance") == topology.DEFAULT_DEADLINE
    assert tuple(system_health.SERVICES) == topology.NAMES


def test_envoy_timeouts_are_the_topology_deadlines() -> None:
    rendered = yaml.safe_load(render(Ports()))
    [mesh_listener] = [listener for listener in rendered["static_resources"]["listeners"] if listener["name"] == "mesh"]
    hosts = mesh_listener["filter_chains"][0]["filters"][0]["typed_config"]["route_config"]["virtual_hosts"]
    for service in topology.SERVICES:
        [host] = [h for h in hosts if h["name"] == service.name]
        catch_all = host["routes"][-1]
        assert catch_all["match"] == {"prefix": "/"}
        assert catch_all["route"]["timeout"] == f"{service.deadline:g}s"
        assert service.host in host["domains"]


def test_unknown_service_is_refused_with_the_known_names(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="gateway, agents, tools, workflows"):
        topology.service("agentz")
    with pytest.raises(ValueError, match="agentz"):
        LocalMesh(tmp_path, instances={"agentz": 2})


def test_instance_limits_live_in_the_topology(tmp_path: Path) -> None:
    assert topology.max_instances("workflows") is None  # run leases let instances share runs
    assert topology.max_instances("agents") is None
    assert len(LocalMesh(tmp_path, instances={"workflows": 2}).plan) == 5
    assert len(LocalMesh(tmp_path, instances={"agents": 3}).plan) == 6


def test_the_launcher_enforces_whatever_limit_the_topology_sets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(topology, "max_instances", lambda name: 1 if name == "tools" else None)
    with pytest.raises(ValueError, match="tools runs as at most 1"):
        LocalMesh(tmp_path, instances={"tools": 2})
