"""Envoy's part of the traces: every HTTP connection manager starts or continues W3C trace context and exports OTLP."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

OTLP_CLUSTER = "otlp_collector"
HCM = "envoy.filters.network.http_connection_manager"
# Envoy's OpenTelemetry tracer sends its buffer once it holds min_flush_spans spans (default 5: one HTTP export per
# five sampled requests, each a request for the collector to parse) or every flush_interval_ms. Batches as large as
# the services' own (BatchSpanProcessor: 512) cut the export work per span; the interval bounds how late a span is.
FLUSH_RUNTIME = {"tracing.opentelemetry.min_flush_spans": 512, "tracing.opentelemetry.flush_interval_ms": 5000}


def tracing_config(listener: str, otlp_endpoint: str, sample: float = 1.0) -> dict[str, Any]:
    """OpenTelemetry tracer: spans over OTLP/HTTP to the collector. `sample` (0 to 1) is the share of requests that
    start a recorded trace here; a request whose traceparent already decided keeps that decision."""
    return {
        "random_sampling": {"value": round(sample * 100, 4)},
        "provider": {
            "name": "envoy.tracers.opentelemetry",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig",
                "service_name": f"envoy-{listener}",
                "http_service": {"http_uri": {
                    "uri": f"{otlp_endpoint.rstrip('/')}/v1/traces", "cluster": OTLP_CLUSTER, "timeout": "2s",
                }},
            },
        },
    }


def otlp_cluster(otlp_endpoint: str) -> dict[str, Any]:
    url = urlsplit(otlp_endpoint)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ValueError(f"MCPMESH_OTLP_ENDPOINT {otlp_endpoint!r}: expected http(s)://HOST:PORT")
    port = url.port or (443 if url.scheme == "https" else 80)
    literal = url.hostname.replace(".", "").isdigit() or ":" in url.hostname
    cluster: dict[str, Any] = {
        "name": OTLP_CLUSTER,
        "type": "STATIC" if literal else "STRICT_DNS",
        "connect_timeout": "1s",
        "load_assignment": {"cluster_name": OTLP_CLUSTER, "endpoints": [{"lb_endpoints": [
            {"endpoint": {"address": {"socket_address": {"address": url.hostname, "port_value": port}}}}
        ]}]},
    }
    if url.scheme == "https":
        cluster["transport_socket"] = {"name": "envoy.transport_sockets.tls", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext", "sni": url.hostname,
        }}
    return cluster


def add_tracing(config: dict[str, Any], otlp_endpoint: str, sample: float = 1.0) -> None:
    """Turns tracing on in every listener's HTTP connection manager (edge, HTTPS edge, mesh) and adds the collector."""
    resources = config["static_resources"]
    for listener in resources["listeners"]:
        for chain in listener.get("filter_chains", []):
            for network_filter in chain.get("filters", []):
                if network_filter.get("name") == HCM:
                    # The edge decides; the mesh follows (Envoy records a request only when its random draw says so
                    # and the traceparent does not say "not sampled", so 100 % on the mesh means "as the caller").
                    share = 1.0 if listener["name"] == "mesh" else sample
                    network_filter["typed_config"]["tracing"] = tracing_config(listener["name"], otlp_endpoint, share)
    resources["clusters"].append(otlp_cluster(otlp_endpoint))
    runtime = config.setdefault("layered_runtime", {"layers": []})
    runtime["layers"].insert(0, {"name": "tracing_flush", "static_layer": dict(FLUSH_RUNTIME)})
