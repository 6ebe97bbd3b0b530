"""Tests for rendering the Envoy config from envoy/edge.yaml and the topology."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.launcher import envoy_config
from services.launcher.certificates import ensure_local
from services.launcher.envoy_config import REPO_ENVOY_DIR, Instance, Ports, committed_text, render
from services.launcher.processes import envoy_binary
from services.runtime import topology

PORTS = Ports(edge=18080, edge_https=18443, mesh=20000, admin=19901, websocket=13100,
              services={"gateway": 13000, "agents": 13001, "tools": 13002, "workflows": 13003})


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


def clusters(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in config["static_resources"]["clusters"]}


def endpoints(cluster: dict[str, Any]) -> list[tuple[str, int]]:
    [group] = cluster["load_assignment"]["endpoints"]
    return [(e["endpoint"]["address"]["socket_address"]["address"], e["endpoint"]["address"]["socket_address"]["port_value"])
            for e in group["lb_endpoints"]]


def test_committed_envoy_yaml_is_rendered_and_up_to_date() -> None:
    assert (REPO_ENVOY_DIR / "envoy.yaml").read_text() == committed_text(), (
        "envoy/envoy.yaml is stale: run `python -m services.launcher.envoy_config --write`"
    )


def test_edge_yaml_has_no_generated_parts() -> None:
    """Clusters of services and the mesh listener come from the topology only, never from the hand-edited file."""
    text = (REPO_ENVOY_DIR / "edge.yaml").read_text()
    for service in topology.SERVICES:
        assert f"port_value: {service.port}" not in text
    base = yaml.load(text, Loader=envoy_config._Loader)
    assert [listener["name"] for listener in base["static_resources"]["listeners"]] == ["edge", "edge_https"]


def test_every_port_comes_from_the_ports_given() -> None:
    rendered = yaml.safe_load(render(PORTS))
    used = collect(rendered, "port_value")
    assert set(used) == set(PORTS.all())
    assert not set(used) & set(Ports().all())


def test_each_port_goes_to_its_role() -> None:
    rendered = yaml.safe_load(render(PORTS))
    listeners = {
        listener["name"]: listener["address"]["socket_address"]["port_value"]
        for listener in rendered["static_resources"]["listeners"]
    }
    assert listeners == {"edge": PORTS.edge, "edge_https": PORTS.edge_https, "mesh": PORTS.mesh}
    assert rendered["admin"]["address"]["socket_address"]["port_value"] == PORTS.admin
    found = clusters(rendered)
    for service in topology.NAMES:
        assert endpoints(found[service]) == [("127.0.0.1", PORTS.service(service))]
    assert endpoints(found["gateway_ws"]) == [("127.0.0.1", PORTS.websocket)]


def test_edge_address_is_loopback_unless_chosen() -> None:
    rendered = yaml.safe_load(render(PORTS))
    assert {a["address"] for a in collect(rendered, "socket_address")} == {"127.0.0.1"}
    chosen = yaml.safe_load(render(PORTS, edge_host="0.0.0.0"))
    edge = [a for a in collect(chosen["static_resources"]["listeners"], "socket_address") if a["port_value"] == PORTS.edge]
    assert [a["address"] for a in edge] == ["0.0.0.0"]


def test_descriptor_path_is_absolute_and_exists_by_default() -> None:
    [path] = set(collect(yaml.safe_load(render(PORTS)), "proto_descriptor"))  # HTTP and HTTPS edge
    assert Path(path).is_absolute() and Path(path).is_file()


def test_envoy_folder_can_live_outside_the_repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An installed package (a container) points MCPMESH_ENVOY_DIR at its copy of edge.yaml and the descriptor set."""
    for name in ("edge.yaml", "mcpmesh.pb"):
        (tmp_path / name).write_bytes((REPO_ENVOY_DIR / name).read_bytes())
    monkeypatch.setenv("MCPMESH_ENVOY_DIR", str(tmp_path))
    [path] = set(collect(yaml.safe_load(render(PORTS)), "proto_descriptor"))  # HTTP and HTTPS edge
    assert Path(path) == tmp_path / "mcpmesh.pb"
    monkeypatch.setenv("MCPMESH_ENVOY_DIR", str(tmp_path / "missing"))
    with pytest.raises(SystemExit, match="MCPMESH_ENVOY_DIR"):
        render(PORTS)


def test_dns_clusters_for_containers() -> None:
    hosts = {name: f"{name}.{topology.NAMESPACE}" for name in topology.NAMES}
    rendered = yaml.safe_load(render(Ports(), edge_host="0.0.0.0", descriptor="/etc/envoy/mcpmesh.pb", service_hosts=hosts))
    found = clusters(rendered)
    for service in topology.SERVICES:
        assert found[service.name]["type"] == "STRICT_DNS"
        assert endpoints(found[service.name]) == [(service.host, service.port)]
    assert endpoints(found["gateway_ws"]) == [("gateway.mcp.local", topology.WEBSOCKET_PORT)]
    assert set(collect(rendered, "proto_descriptor")) == {"/etc/envoy/mcpmesh.pb"}  # HTTP and HTTPS edge


def test_free_ports_are_distinct_and_nonzero() -> None:
    ports = Ports.free().all()
    assert len(set(ports)) == len(ports)
    assert all(port > 0 for port in ports)


def test_several_instances_become_several_endpoints() -> None:
    ports = Ports.free()
    instances = [
        Instance("agents", "agents", ports.service("agents")),
        Instance("agents-2", "agents", 40001),
        Instance("gateway", "gateway", ports.service("gateway"), ports.websocket),
        Instance("gateway-2", "gateway", 40002, 40003),
        Instance("tools", "tools", ports.service("tools")),
        Instance("workflows", "workflows", ports.service("workflows")),
    ]
    found = clusters(yaml.safe_load(render(ports, instances=instances)))
    assert [p for _, p in endpoints(found["agents"])] == [ports.service("agents"), 40001]
    assert [p for _, p in endpoints(found["gateway"])] == [ports.service("gateway"), 40002]
    assert [p for _, p in endpoints(found["gateway_ws"])] == [ports.websocket, 40003]
    assert [p for _, p in endpoints(found["tools"])] == [ports.service("tools")]


def test_edge_routes_can_go_direct_to_each_service(tmp_path: Path) -> None:
    base = (REPO_ENVOY_DIR / "edge.yaml").read_text().replace("!service_routes { via: authz }", "!service_routes { via: direct }")
    (tmp_path / "edge.yaml").write_text(base)
    rendered = render_config_from(tmp_path / "edge.yaml")
    routes = rendered["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]["route_config"]["virtual_hosts"][0]["routes"]
    by_name = {r["name"]: r for r in routes if "route" in r}  # not the direct_response ones
    for service in topology.SERVICES:
        assert by_name[f"edge_{service.name}"]["route"]["cluster"] == service.name
        assert by_name[f"edge_{service.name}"]["typed_per_filter_config"] == envoy_config.NO_EXT_AUTHZ
    assert by_name["edge_watch_workflow"]["route"]["cluster"] == "workflows"


def test_service_calls_go_straight_to_the_service_keys_after_the_gateways_check() -> None:
    routes = envoy_config.edge_service_routes("authz", {"mcpmesh.workflows.v1.WorkflowService": ["WatchWorkflow"]})
    by_name = {r["name"]: r for r in routes}
    for service in topology.SERVICES:
        if service.name == "gateway":  # its own RPCs: the gateway checks keys itself, no ext_authz
            own = by_name["edge_gateway"]
            assert own["route"]["cluster"] == "gateway" and own["typed_per_filter_config"] == envoy_config.NO_EXT_AUTHZ
            assert "edge_gateway_direct" not in by_name
            continue
        direct, keyed = by_name[f"edge_{service.name}_direct"], by_name[f"edge_{service.name}"]
        assert direct["route"]["cluster"] == keyed["route"]["cluster"] == service.name
        assert direct["match"]["headers"] == [envoy_config.TOKEN_HEADER_MATCH]
        # A token was verified by jwt_authn: no ext_authz; anything else (a key, nothing) is checked by the gateway.
        assert direct["typed_per_filter_config"] == envoy_config.NO_EXT_AUTHZ and "typed_per_filter_config" not in keyed
        assert direct["route"]["timeout"] == keyed["route"]["timeout"] == f"{service.deadline:g}s"
        assert routes.index(direct) < routes.index(keyed)  # the header-matched route is tried first
    assert by_name["edge_watch_workflow_direct"]["route"]["cluster"] == by_name["edge_watch_workflow"]["route"]["cluster"] == "workflows"
    assert by_name["edge_default"]["typed_per_filter_config"] == envoy_config.NO_EXT_AUTHZ
    bearer = re.compile(envoy_config.TOKEN_BEARER)
    assert bearer.match("Bearer aaa.bbb.ccc") and bearer.match("bearer a-b_c.d.")
    assert not bearer.match("Bearer mk_abc_def") and not bearer.match("Bearer a.b.c.d") and not bearer.match("a.b.c")
    with pytest.raises(ValueError, match="authz or direct"):
        envoy_config.edge_service_routes("gateway", {})


def test_ext_authz_runs_only_on_the_key_routes() -> None:
    """Every route of the edge turns ext_authz off except the generated key routes to the services."""
    listener = yaml.safe_load(render(PORTS))["static_resources"]["listeners"][0]
    manager = listener["filter_chains"][0]["filters"][0]["typed_config"]
    names = [f["name"] for f in manager["http_filters"]]
    # After the transcoder (it sees the gRPC method path), before the router; never lets a call through on failure.
    assert names.index("envoy.filters.http.grpc_json_transcoder") < names.index("envoy.filters.http.ext_authz") < names.index("envoy.filters.http.router")
    authz = manager["http_filters"][names.index("envoy.filters.http.ext_authz")]["typed_config"]
    assert authz["failure_mode_allow"] is False and authz["grpc_service"]["envoy_grpc"]["cluster_name"] == "gateway"
    checked = [r for r in manager["route_config"]["virtual_hosts"][0]["routes"]
               if "envoy.filters.http.ext_authz" not in r.get("typed_per_filter_config", {})]
    behind = {s.name for s in topology.SERVICES if s.name != "gateway"}
    assert {f"edge_{name}" for name in behind} <= {r["name"] for r in checked}
    # ...and only those: each sends a call without a token straight to a service other than the gateway.
    assert all(r["route"]["cluster"] in behind and envoy_config.TOKEN_HEADER_MATCH not in r["match"].get("headers", [])
               for r in checked), checked


def test_unknown_port_name_is_a_clear_error(tmp_path: Path) -> None:
    base = (REPO_ENVOY_DIR / "edge.yaml").read_text().replace("port_value: !port admin", "port_value: !port adminn")
    (tmp_path / "edge.yaml").write_text(base)
    with pytest.raises(ValueError, match="adminn"):
        render_config_from(tmp_path / "edge.yaml")


def render_config_from(base: Path) -> dict[str, Any]:
    return envoy_config.render_config(PORTS, base=base, descriptor=REPO_ENVOY_DIR / "mcpmesh.pb")


def test_envoy_accepts_the_rendered_configs(tmp_path: Path) -> None:
    """Envoy's own validation of the local config and the container (DNS) config."""
    hosts = {name: f"{name}.{topology.NAMESPACE}" for name in topology.NAMES}
    # Envoy's validation reads the HTTPS edge's certificate and key.
    made = ensure_local(tmp_path)
    tls = {"cert": made.server_cert, "key": made.server_key}
    for name, text in [("local.yaml", render(Ports.free(), tls=tls)),
                       ("dns.yaml", render(Ports(), edge_host="0.0.0.0", service_hosts=hosts, tls=tls)),
                       ("traced.yaml", render(Ports.free(), tls=tls, otlp_endpoint="http://127.0.0.1:4318"))]:
        (tmp_path / name).write_text(text)
        done = subprocess.run([envoy_binary(), "--mode", "validate", "-c", str(tmp_path / name)],
                              capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stdout + done.stderr


def test_tracing_is_on_in_every_connection_manager_only_with_a_collector() -> None:
    plain = yaml.safe_load(render(PORTS))
    assert collect(plain, "tracing") == [] and "otlp_collector" not in clusters(plain)
    traced = yaml.safe_load(render(PORTS, otlp_endpoint="http://collector.mcp.local:4318"))
    managers = [f["typed_config"] for listener in traced["static_resources"]["listeners"]
                for chain in listener["filter_chains"] for f in chain["filters"]]
    assert managers and all(m["tracing"]["provider"]["name"] == "envoy.tracers.opentelemetry" for m in managers)
    [uri] = {m["tracing"]["provider"]["typed_config"]["http_service"]["http_uri"]["uri"] for m in managers}
    assert uri == "http://collector.mcp.local:4318/v1/traces"
    sampled = yaml.safe_load(render(PORTS, otlp_endpoint="http://127.0.0.1:4318", trace_sample=0.1))
    shares = {listener["name"]: listener["filter_chains"][0]["filters"][0]["typed_config"]["tracing"]["random_sampling"]["value"]
              for listener in sampled["static_resources"]["listeners"]}
    assert shares["edge"] == 10 and shares["mesh"] == 100  # the edge draws; the mesh follows the traceparent
    # Envoy exports in batches as large as the services' (512 spans, or every 5 s), not one export per 5 spans.
    [flush] = [layer["static_layer"] for layer in traced["layered_runtime"]["layers"] if layer["name"] == "tracing_flush"]
    assert flush["tracing.opentelemetry.min_flush_spans"] == 512 and "layered_runtime" not in plain
    collector = clusters(traced)["otlp_collector"]
    assert collector["type"] == "STRICT_DNS" and endpoints(collector) == [("collector.mcp.local", 4318)]
    with pytest.raises(ValueError, match="MCPMESH_OTLP_ENDPOINT"):
        render(PORTS, otlp_endpoint="collector:4318")
