"""Wires a service process's traces, metrics and log context from its Config; the server calls it, apps do not."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Mapping

from services.runtime import logs, metrics, tracing
from services.runtime.config import VERSION, Config

log = logging.getLogger("mcpmesh.telemetry")


def configure(config: Config) -> None:
    """Before the app is built, so the mesh channels it creates already carry trace context."""
    where = tracing.configure(
        config.service, VERSION, config.tracing, config.otlp_endpoint, config.data_dir, config.trace_sample
    )
    log.info("tracing", extra={"traces_to": where})


def start(config: Config, port: int, read_gauges: Callable[[], Mapping[str, float]]) -> Callable[[], None]:
    """After the server has bound `port`: names the instance in logs, serves /metrics, starts EMF lines.
    Returns what to call when the server stops (the last EMF window and the buffered spans go out)."""
    instance = f"{socket.gethostname() if config.host in ('0.0.0.0', '::') else config.host}:{port}"
    logs.set_instance(instance)
    stops: list[Callable[[], None]] = []
    if config.metrics_port:
        stops.append(metrics.serve_prometheus(config.host, config.metrics_port, config.service, read_gauges))
    if config.emf_namespace:
        stops.append(metrics.start_emf(config.emf_namespace, config.emf_seconds, config.service, instance, read_gauges))

    def stop() -> None:
        for one in reversed(stops):
            one()
        tracing.shutdown()

    return stop
