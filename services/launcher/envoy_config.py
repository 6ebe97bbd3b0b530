"""Renders the Envoy config: envoy/edge.yaml (hand-edited) plus the mesh listener and clusters from the topology."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from google.protobuf import descriptor_pb2

from services.launcher.envoy_tracing import add_tracing
from services.launcher.ports import free_ports
from services.runtime import topology

ENVOY_DIR_ENV = "MCPMESH_ENVOY_DIR"
# The repository's envoy/ folder; a container or another install points MCPMESH_ENVOY_DIR at its copy.
REPO_ENVOY_DIR = Path(__file__).resolve().parents[2] / "envoy"
BASE_NAME = "edge.yaml"
RENDERED_NAME = "envoy.yaml"
DESCRIPTOR_NAME = "mcpmesh.pb"


def envoy_dir() -> Path:
    """Where edge.yaml and mcpmesh.pb are: MCPMESH_ENVOY_DIR, else the repository's envoy/ folder."""
    folder = Path(os.environ.get(ENVOY_DIR_ENV) or REPO_ENVOY_DIR)
    if not (folder / BASE_NAME).is_file():
        raise SystemExit(f"{folder / BASE_NAME} not found: set {ENVOY_DIR_ENV} to the folder holding {BASE_NAME} and {DESCRIPTOR_NAME}")
    return folder


@dataclass(frozen=True)
class Ports:
    """Every port of a local mesh; the defaults are the topology's."""

    edge: int = topology.EDGE_PORT
    edge_https: int = topology.EDGE_HTTPS_PORT
    mesh: int = topology.MESH_PORT
    admin: int = topology.ADMIN_PORT
    websocket: int = topology.WEBSOCKET_PORT
    services: Mapping[str, int] = field(default_factory=lambda: dict(topology.DEFAULT_PORTS))

    @classmethod
    def free(cls) -> Ports:
        """Free loopback ports, for tests and benchmarks next to a running `make up`."""
        ports = free_ports(5 + len(topology.NAMES))
        edge, edge_https, mesh, admin, websocket = ports[:5]
        return cls(edge, edge_https, mesh, admin, websocket, dict(zip(topology.NAMES, ports[5:], strict=True)))

    def service(self, name: str) -> int:
        return self.services[name]

    def named(self, name: str) -> int:
        """A port by the name edge.yaml's `!port` tag uses."""
        if name in self.services:
            return self.services[name]
        if name in ("edge", "edge_https", "mesh", "admin", "websocket"):
            return int(getattr(self, name))
        raise ValueError(f"!port {name}: unknown port name")

    def all(self) -> list[int]:
        return [self.edge, self.edge_https, self.mesh, self.admin, self.websocket, *self.services.values()]


@dataclass(frozen=True)
class Instance:
    """One process of a service: its name ("agents", "agents-2"), its gRPC port, and for the gateway its WebSocket port."""

    name: str
    service: str
    port: int
    websocket_port: int = 0


# ------------------------------------------------------------------ edge.yaml tags ----

@dataclass(frozen=True)
class _Tag:
    kind: str
    value: Any


class _Loader(yaml.SafeLoader):
    """Reads edge.yaml's tags as markers; `_resolve` replaces them with values from the topology."""


for _kind in ("port", "address", "descriptor", "deadline", "service_routes", "grpc_services", "tls", "envoy_file",
              "token_bearer"):
    def _construct(loader: yaml.SafeLoader, node: yaml.Node, kind: str = _kind) -> _Tag:
        if isinstance(node, yaml.MappingNode):
            return _Tag(kind, loader.construct_mapping(node, deep=True))
        if isinstance(node, yaml.SequenceNode):
            return _Tag(kind, loader.construct_sequence(node, deep=True))
        return _Tag(kind, loader.construct_scalar(node))  # type: ignore[arg-type]

    _Loader.add_constructor(f"!{_kind}", _construct)


class _Dumper(yaml.SafeDumper):
    """Writes every value out in full: the rendered file is read by people, not only by Envoy."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _seconds(value: float) -> str:
    return f"{value:g}s"


READ_RETRY: dict[str, Any] = {
    "retry_on": "unavailable,reset,connect-failure,refused-stream",
    "num_retries": 2,
    # Reads are quick; cut a hung try so the retry can run.
    "per_try_timeout": "10s",
    # With several instances, retry on another host.
    "retry_host_predicate": [{
        "name": "envoy.retry_host_predicates.previous_hosts",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate",
        },
    }],
    "host_selection_retry_max_attempts": 3,
}
HEALTH_REPORT_PREFIX = "/mcpmesh.health.v1.HealthReportService/"
HEALTH_CHECK = "/grpc.health.v1.Health/Check"
HEALTH_WATCH = "/grpc.health.v1.Health/Watch"
READ_METHOD_PREFIXES = ("Get", "List")  # idempotent by AIP naming: retried on the mesh


def stream_methods(descriptor: Path) -> dict[str, list[str]]:
    """Server-streaming methods per gRPC service, read from the descriptor set the transcoder uses."""
    files = descriptor_pb2.FileDescriptorSet.FromString(descriptor.read_bytes())
    streams: dict[str, list[str]] = {}
    for file in files.file:
        for service in file.service:
            name = f"{file.package}.{service.name}"
            streams[name] = [m.name for m in service.method if m.server_streaming]
    return streams


def _stream_route(prefix: str, cluster: str, name: str | None = None) -> dict[str, Any]:
    route: dict[str, Any] = {"match": {"prefix": prefix}, "route": {
        "cluster": cluster, "timeout": "0s", "idle_timeout": _seconds(topology.STREAM_IDLE_SECONDS)}}
    return {"name": name, **route} if name else route


def _snake(method: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in method).lstrip("_")


# A bearer that is a JWT (three base64url parts): the gateway's token, which jwt_authn verifies at the edge
# and the service verifies again. Anything else (an API key, junk, nothing) is checked by the gateway (ext_authz).
TOKEN_BEARER = r"^[Bb][Ee][Aa][Rr][Ee][Rr] +[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$"
TOKEN_HEADER_MATCH = {"name": "authorization", "string_match": {"safe_regex": {"regex": TOKEN_BEARER}}}
# The edge's ext_authz filter runs on the key routes only; every other route turns it off.
NO_EXT_AUTHZ = {"envoy.filters.http.ext_authz": {
    "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute", "disabled": True}}

# Marks the routes a raw API key takes to a service: the edge's key cache (mcpmesh.key_cache in edge.yaml) acts there only.
KEY_ROUTE = {"filter_metadata": {"mcpmesh.key_cache": {"key_route": True}}}


def edge_service_routes(via: str, streams: Mapping[str, list[str]]) -> list[dict[str, Any]]:
    """The edge's generated routes: streams, one per service contract with its deadline, then the catch-all.

    Every service call goes from the edge straight to the service's cluster. `via: authz`: a call with a
    token (verified by jwt_authn) goes as it is; any other (an API key, no credentials) first passes the
    gateway's ext_authz check, which puts a token in place of the key. `via: direct`: no check at the edge
    at all (the service still refuses a call without a valid token). The gateway's own RPCs, health and
    reflection go to the gateway by the catch-all, which checks keys itself."""
    if via not in ("authz", "direct"):
        raise ValueError(f"!service_routes via: expected authz or direct, got {via!r}")

    def routes_for(path: str, service: topology.Service, route: dict[str, Any], name: str, prefix: bool) -> list[dict[str, Any]]:
        match = {"prefix": path} if prefix else {"path": path}
        to_service = {**route, "cluster": service.name}
        if via == "direct" or service.name == "gateway":  # the gateway checks keys on its own RPCs itself
            return [{"name": name, "match": match, "route": to_service, "typed_per_filter_config": NO_EXT_AUTHZ}]
        return [
            {"name": f"{name}_direct", "match": {**match, "headers": [TOKEN_HEADER_MATCH]}, "route": to_service,
             "typed_per_filter_config": NO_EXT_AUTHZ},
            {"name": name, "match": match, "route": to_service, "metadata": KEY_ROUTE},
        ]

    stream_timeouts = {"timeout": "0s", "idle_timeout": _seconds(topology.STREAM_IDLE_SECONDS)}
    routes = [
        route
        for s in topology.SERVICES for method in streams.get(s.grpc_service, [])
        for route in routes_for(f"/{s.grpc_service}/{method}", s, stream_timeouts, f"edge_{_snake(method)}", True)
    ]
    routes.append({**_stream_route(HEALTH_WATCH, "gateway", "edge_health_watch"), "typed_per_filter_config": NO_EXT_AUTHZ})
    routes += [
        route
        for s in topology.SERVICES
        for route in routes_for(s.proto_prefix, s, {"timeout": _seconds(s.deadline)}, f"edge_{s.name}", True)
    ]
    routes.append({"name": "edge_default", "match": {"prefix": "/"},
                   "route": {"cluster": "gateway", "timeout": _seconds(topology.DEFAULT_DEADLINE)},
                   "typed_per_filter_config": NO_EXT_AUTHZ})
    return routes


def mesh_virtual_host(service: topology.Service, streams: Mapping[str, list[str]]) -> dict[str, Any]:
    """Service-to-service routes: streams without a deadline, reads retried, everything else with the deadline once."""
    name, timeout = service.name, _seconds(service.deadline)
    routes = [_stream_route(f"/{service.grpc_service}/{m}", name) for m in streams.get(service.grpc_service, [])]
    reads = [f"/{service.grpc_service}/{verb}" for verb in READ_METHOD_PREFIXES] + [HEALTH_REPORT_PREFIX, HEALTH_CHECK]
    routes += [{"match": {"prefix": p}, "route": {"cluster": name, "timeout": timeout, "retry_policy": READ_RETRY}} for p in reads]
    routes.append(_stream_route(HEALTH_WATCH, name))
    routes.append({"match": {"prefix": "/"}, "route": {"cluster": name, "timeout": timeout}})
    return {"name": name, "domains": [name, service.host], "routes": routes}


def mesh_listener(ports: Ports, streams: Mapping[str, list[str]], host: str = "127.0.0.1") -> dict[str, Any]:
    """127.0.0.1:mesh: every call between services, routed by :authority to the service's cluster.

    `host` is 0.0.0.0 only where the services run in other containers of a private network (docker compose)."""
    instance_host = {
        "name": "instance",
        "domains": ["instance"],
        # One named instance, for the gateway's per-instance health reports: the header picks the host.
        # Only health reports, only loopback hosts, so the mesh cannot be used to reach anything else.
        "routes": [{
            "match": {"prefix": HEALTH_REPORT_PREFIX, "headers": [{
                "name": "x-envoy-original-dst-host",
                "string_match": {"safe_regex": {"regex": r"^127\.0\.0\.1:[0-9]{1,5}$"}},
            }]},
            "route": {"cluster": "instance", "timeout": "5s"},
        }],
    }
    return {
        "name": "mesh",
        "address": {"socket_address": {"address": host, "port_value": ports.mesh}},
        "filter_chains": [{"filters": [{
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                "stat_prefix": "mesh",
                "codec_type": "HTTP2",
                "http2_protocol_options": {},
                "request_timeout": "0s",
                "stream_idle_timeout": "300s",
                # "agents:10000" and "agents" both match the "agents" virtual host.
                "strip_any_host_port": True,
                "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}],
                "route_config": {
                    "name": "mesh",
                    "virtual_hosts": [*(mesh_virtual_host(s, streams) for s in topology.SERVICES), instance_host],
                },
            },
        }]}],
    }


H2_UPSTREAM = {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
    "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
    "explicit_http_config": {"http2_protocol_options": {}},
}}
# The failure breaker of DESIGN §2: 5 consecutive failures in 30 s eject a host for 15 s.
# enforcing_consecutive_gateway_failure defaults to 0 in Envoy, so it is set to 100.
OUTLIER_DETECTION = {
    "consecutive_5xx": 5,
    "consecutive_gateway_failure": 5,
    "enforcing_consecutive_5xx": 100,
    "enforcing_consecutive_gateway_failure": 100,
    "interval": "30s",
    "base_ejection_time": "15s",
    "max_ejection_percent": 100,
}
# Concurrency limits (circuit breakers in Envoy's sense, distinct from outlier detection).
CIRCUIT_BREAKERS = {"thresholds": [{
    "priority": "DEFAULT", "max_connections": 1024, "max_pending_requests": 1024, "max_requests": 1024, "max_retries": 3,
}]}


def _endpoints(name: str, addresses: Sequence[tuple[str, int]]) -> dict[str, Any]:
    return {"cluster_name": name, "endpoints": [{"lb_endpoints": [
        {"endpoint": {"address": {"socket_address": {"address": host, "port_value": port}}}} for host, port in addresses
    ]}]}


def service_cluster(service: topology.Service, addresses: Sequence[tuple[str, int]], dns: bool) -> dict[str, Any]:
    return {
        "name": service.name,
        "type": "STRICT_DNS" if dns else "STATIC",
        "connect_timeout": "1s",
        # gRPC upstreams need HTTP/2 (without it REST gets 502, gRPC UNAVAILABLE).
        "typed_extension_protocol_options": H2_UPSTREAM,
        "load_assignment": _endpoints(service.name, addresses),
        # The standard grpc.health.v1 check: a service that reports NOT_SERVING is taken out.
        "health_checks": [{
            "grpc_health_check": {"service_name": service.grpc_service},
            "interval": "1s", "timeout": "1s", "unhealthy_threshold": 2, "healthy_threshold": 1, "no_traffic_interval": "1s",
        }],
        "outlier_detection": OUTLIER_DETECTION,
        # No panic mode: with one host the default 50 % threshold keeps sending to an unhealthy host. Fail fast (503).
        "common_lb_config": {"healthy_panic_threshold": {"value": 0}},
        "circuit_breakers": CIRCUIT_BREAKERS,
    }


def generated_clusters(
    ports: Ports, instances: Sequence[Instance], service_hosts: Mapping[str, str] | None
) -> list[dict[str, Any]]:
    """One cluster per service (one endpoint per instance), the gateway's WebSocket cluster, and "instance"."""
    planned = list(instances) or [
        Instance(s.name, s.name, ports.service(s.name), ports.websocket if s.http_port else 0) for s in topology.SERVICES
    ]
    clusters = []
    for service in topology.SERVICES:
        mine = [i for i in planned if i.service == service.name]
        if service_hosts is not None:
            addresses = [(service_hosts[service.name], ports.service(service.name))]
        else:
            addresses = [("127.0.0.1", i.port) for i in mine]
        clusters.append(service_cluster(service, addresses, dns=service_hosts is not None))
    if service_hosts is not None:
        websockets = [(service_hosts["gateway"], ports.websocket)]
    else:
        websockets = [("127.0.0.1", i.websocket_port) for i in planned if i.websocket_port]
    clusters.append({
        # The gateway's WebSocket endpoint: plain HTTP/1.1 (the upgrade needs it).
        "name": "gateway_ws",
        "type": "STRICT_DNS" if service_hosts is not None else "STATIC",
        "connect_timeout": "1s",
        "load_assignment": _endpoints("gateway_ws", websockets),
    })
    clusters.append({
        # Reaches the host named by x-envoy-original-dst-host (the mesh's "instance" virtual host).
        "name": "instance",
        "type": "ORIGINAL_DST",
        "lb_policy": "CLUSTER_PROVIDED",
        "connect_timeout": "1s",
        "original_dst_lb_config": {"use_http_header": True},
        "typed_extension_protocol_options": H2_UPSTREAM,
    })
    return clusters


# Where the launcher keeps the edge's certificate when its data folder is the default .mcpmesh
# (services/launcher/certificates.py); relative to Envoy's working directory.
DEFAULT_TLS = {"cert": ".mcpmesh/tls/server.crt", "key": ".mcpmesh/tls/server.key"}


def render_config(
    ports: Ports,
    *,
    instances: Sequence[Instance] = (),
    edge_host: str = "127.0.0.1",
    descriptor: Path | str | None = None,
    service_hosts: Mapping[str, str] | None = None,
    base: Path | None = None,
    tls: Mapping[str, Path | str] | None = None,
    otlp_endpoint: str = "",
    mesh_host: str = "127.0.0.1",
    trace_sample: float = 1.0,
) -> dict[str, Any]:
    """The full config as a dict. `service_hosts` (service -> DNS name) gives DNS clusters, for containers.

    `tls` ({"cert": ..., "key": ...}) are the HTTPS edge's PEM files; by default the launcher's, relative to Envoy's cwd."""
    tls_files = {**DEFAULT_TLS, **(tls or {})}
    base_path = base if base is not None else envoy_dir() / BASE_NAME
    descriptor_path = Path(descriptor) if descriptor is not None else base_path.parent / DESCRIPTOR_NAME
    # Stream methods come from the descriptor set; where the path is Envoy's view (a container), read the local copy.
    readable = descriptor_path if descriptor_path.is_file() else base_path.parent / DESCRIPTOR_NAME
    streams = stream_methods(readable)
    config = yaml.load(base_path.read_text(), Loader=_Loader)

    def resolve(node: Any) -> Any:
        if isinstance(node, _Tag):
            if node.kind == "port":
                return ports.named(node.value)
            if node.kind == "address":
                return edge_host
            if node.kind == "descriptor":
                return str(descriptor_path)
            if node.kind == "envoy_file":
                return str(descriptor_path.parent / node.value)
            if node.kind == "token_bearer":
                return TOKEN_BEARER
            if node.kind == "tls":
                return str(tls_files[node.value])
            if node.kind == "deadline":
                return _seconds(topology.DEFAULT_DEADLINE if node.value == "default" else topology.service(node.value).deadline)
            if node.kind == "grpc_services":
                return [*(s.grpc_service for s in topology.SERVICES), *node.value]
            raise ValueError(f"!{node.kind} is only allowed as an item of a route list")
        if isinstance(node, dict):
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            items: list[Any] = []
            for value in node:
                if isinstance(value, _Tag) and value.kind == "service_routes":
                    items += edge_service_routes(value.value.get("via", "authz"), streams)
                else:
                    items.append(resolve(value))
            return items
        return node

    config = resolve(config)
    resources = config["static_resources"]
    resources["listeners"].append(mesh_listener(ports, streams, mesh_host))
    resources["clusters"] = [*(resources.get("clusters") or []), *generated_clusters(ports, instances, service_hosts)]
    if otlp_endpoint:  # Envoy traces too (MCPMESH_OTLP_ENDPOINT); without a collector it only passes traceparent on
        add_tracing(config, otlp_endpoint, trace_sample)
    return config


def render(ports: Ports, **options: Any) -> str:
    """The full config as YAML text; options as in render_config."""
    return yaml.dump(render_config(ports, **options), Dumper=_Dumper, sort_keys=False, width=120)


HEADER = (
    "# GENERATED from envoy/edge.yaml and services/runtime/topology.py: do not edit.\n"
    "# Refresh with `python -m services.launcher.envoy_config --write`; a test fails when it is stale.\n"
    "# Defaults of the design; Envoy runs with the repository as its working directory.\n"
)


def committed_text() -> str:
    """What envoy/envoy.yaml holds: the design's ports, the edge on every address, the repository-relative descriptor."""
    return HEADER + render(Ports(), edge_host="0.0.0.0", descriptor=f"envoy/{DESCRIPTOR_NAME}", base=REPO_ENVOY_DIR / BASE_NAME)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="refresh the committed envoy/envoy.yaml")
    parser.add_argument("--out", type=Path, help="write the config here instead of standard output")
    parser.add_argument("--edge-host", default="0.0.0.0", help="address the edge listens on")
    parser.add_argument("--descriptor", help="descriptor set path as Envoy will see it (default: in the envoy folder)")
    parser.add_argument("--dns-suffix", default=None, metavar="SUFFIX",
                        help="clusters by DNS name: SERVICE + SUFFIX ('' for docker compose, '.mcp.local' for ECS)")
    args = parser.parse_args(argv)
    if args.write:
        (REPO_ENVOY_DIR / RENDERED_NAME).write_text(committed_text())
        return
    hosts = None if args.dns_suffix is None else {name: f"{name}{args.dns_suffix}" for name in topology.NAMES}
    text = render(Ports(), edge_host=args.edge_host, descriptor=args.descriptor, service_hosts=hosts)
    if args.out:
        args.out.write_text(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
