"""The rendered Envoy config carries the design's mesh figures: timeouts, health checks, outlier detection, breakers, retries."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from services.launcher.envoy_config import Ports, render
from services.runtime import topology

CONFIG = yaml.safe_load(render(Ports()))
CLUSTERS = {c["name"]: c for c in CONFIG["static_resources"]["clusters"]}
LISTENERS = {listener["name"]: listener for listener in CONFIG["static_resources"]["listeners"]}
GRPC_SERVICES = {s.name: s.grpc_service for s in topology.SERVICES}


def _manager(listener: str) -> dict[str, Any]:
    return LISTENERS[listener]["filter_chains"][0]["filters"][0]["typed_config"]


def _routes(listener: str, domain: str) -> list[dict[str, Any]]:
    hosts = _manager(listener)["route_config"]["virtual_hosts"]
    return next(h for h in hosts if domain in h["domains"])["routes"]


def _seconds(value: str) -> float:
    return float(value.rstrip("s"))


@pytest.mark.parametrize("name", sorted(GRPC_SERVICES))
def test_grpc_clusters_speak_http2_with_health_checks_and_breakers(name: str) -> None:
    cluster = CLUSTERS[name]
    options = cluster["typed_extension_protocol_options"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
    assert "http2_protocol_options" in options["explicit_http_config"]
    [check] = cluster["health_checks"]
    assert check["grpc_health_check"]["service_name"] == GRPC_SERVICES[name]
    outlier = cluster["outlier_detection"]
    assert outlier["consecutive_5xx"] == 5
    assert outlier["consecutive_gateway_failure"] == 5
    assert outlier["enforcing_consecutive_5xx"] == 100
    assert outlier["enforcing_consecutive_gateway_failure"] == 100  # Envoy's default is 0
    assert _seconds(outlier["interval"]) == 30
    assert _seconds(outlier["base_ejection_time"]) == 15
    assert cluster["common_lb_config"]["healthy_panic_threshold"]["value"] == 0
    [thresholds] = cluster["circuit_breakers"]["thresholds"]
    assert {"max_connections", "max_pending_requests", "max_requests", "max_retries"} <= set(thresholds)


@pytest.mark.parametrize(("service", "timeout"), [("agents", 120), ("tools", 60), ("workflows", 300), ("gateway", 30)])
def test_mesh_route_timeouts(service: str, timeout: int) -> None:
    routes = _routes("mesh", service)
    unary = [r for r in routes if "retry_policy" not in r["route"] and _seconds(r["route"]["timeout"]) > 0]
    assert unary and all(_seconds(r["route"]["timeout"]) == timeout for r in unary)
    assert all(r["route"]["cluster"] == service for r in routes)


def test_only_reads_are_retried_on_the_mesh() -> None:
    for service in GRPC_SERVICES:
        for route in _routes("mesh", service):
            if "retry_policy" in route["route"]:
                method = route["match"]["prefix"].rsplit("/", 1)[-1]
                assert method.startswith(("Get", "List", "Check")) or route["match"]["prefix"].startswith(
                    "/mcpmesh.health.v1."
                ), route["match"]


def test_streams_have_no_deadline_but_an_idle_limit() -> None:
    for listener, domain in [("edge", "*"), ("mesh", "workflows")]:
        watch = next(r for r in _routes(listener, domain) if r["match"].get("prefix", "").endswith("/WatchWorkflow"))
        assert _seconds(watch["route"]["timeout"]) == 0
        assert _seconds(watch["route"]["idle_timeout"]) > 0
    assert _seconds(_manager("edge")["stream_idle_timeout"]) > 0


@pytest.mark.parametrize(("prefix", "timeout"), [
    ("/mcpmesh.workflows.v1.", 300), ("/mcpmesh.agents.v1.", 120), ("/mcpmesh.tools.v1.", 60), ("/", 30),
])
def test_edge_timeouts_per_service_keys_checked_by_ext_authz_tokens_by_jwt_authn(prefix: str, timeout: int) -> None:
    """Service routes go straight to the service: a raw key through the gateway's ext_authz Check, a token (already
    verified by jwt_authn) without it. Everything else ("/") is the gateway's own, which checks keys itself."""
    matching = [r for r in _routes("edge", "*") if r["match"].get("prefix") == prefix]
    keyed = next(r for r in matching if "headers" not in r["match"])
    assert _seconds(keyed["route"]["timeout"]) == timeout
    ext_authz_off = "envoy.filters.http.ext_authz" in keyed.get("typed_per_filter_config", {})
    if prefix == "/":
        assert keyed["route"]["cluster"] == "gateway" and ext_authz_off
        return
    assert keyed["route"]["cluster"] == prefix.split(".")[1] and not ext_authz_off
    direct = next(r for r in matching if "headers" in r["match"])
    assert direct["route"]["cluster"] == prefix.split(".")[1]
    assert _seconds(direct["route"]["timeout"]) == timeout
    assert direct["typed_per_filter_config"]["envoy.filters.http.ext_authz"]["disabled"] is True


def test_edge_transcoder_is_strict_and_converts_statuses() -> None:
    filters = {f["name"]: f["typed_config"] for f in _manager("edge")["http_filters"]}
    transcoder = filters["envoy.filters.http.grpc_json_transcoder"]
    assert transcoder["convert_grpc_status"] is True
    assert transcoder["request_validation_options"]["reject_unknown_method"] is True
    assert transcoder["request_validation_options"]["reject_unknown_query_parameters"] is True
    assert set(GRPC_SERVICES.values()) <= set(transcoder["services"])
    assert filters["envoy.filters.http.buffer"]["max_request_bytes"] == 2**20
    ws = next(r for r in _routes("edge", "*") if r["match"].get("prefix") == "/ws")
    assert ws["route"]["upgrade_configs"][0]["upgrade_type"] == "websocket"
    assert ws["typed_per_filter_config"]["envoy.filters.http.grpc_json_transcoder"]["disabled"] is True


def test_admin_is_loopback_only() -> None:
    assert CONFIG["admin"]["address"]["socket_address"]["address"] == "127.0.0.1"
    assert LISTENERS["mesh"]["address"]["socket_address"]["address"] == "127.0.0.1"


def test_instance_route_reaches_only_loopback_health_reports() -> None:
    [route] = _routes("mesh", "instance")
    assert route["match"]["prefix"] == "/mcpmesh.health.v1.HealthReportService/"
    [header] = route["match"]["headers"]
    assert header["name"] == "x-envoy-original-dst-host"
    assert header["string_match"]["safe_regex"]["regex"].startswith("^127\\.0\\.0\\.1:")
    assert CLUSTERS["instance"]["type"] == "ORIGINAL_DST"
