"""The gateway's system health with the instance report registry: in containers (no Envoy admin in reach) every
instance that published lately is listed with its own report; where Envoy lists the hosts, a remote host gets its
published report and a local one is asked. The registry is the real SQLite adapter; Envoy's admin is a stub."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcpmesh.health.v1 import health_pb2

from services.gateway.system_health import SystemHealth
from services.runtime.clock import utcnow
from services.runtime.instance_reports import FRESH_SECONDS, PublishedReport, Publisher
from services.runtime.instance_reports_sqlite import SCHEMA, SqliteInstanceReports
from services.runtime.mesh import Mesh
from services.runtime.state import SqliteDatabase

SERVING, DEGRADED, NOT_SERVING = (health_pb2.HEALTH_STATUS_SERVING, health_pb2.HEALTH_STATUS_DEGRADED,
                                  health_pb2.HEALTH_STATUS_NOT_SERVING)
UNREACHABLE = "http://127.0.0.1:9"  # nothing listens on the discard port: Envoy's admin out of reach


def _report(service: str, address: str, status: health_pb2.HealthStatus.ValueType, **metrics: float) -> health_pb2.HealthReport:
    return health_pb2.HealthReport(service=service, instance=address, status=status, version="1.0.0", metrics=metrics)


async def _publish(registry: SqliteInstanceReports, service: str, address: str, status: health_pb2.HealthStatus.ValueType,
                   age: float = 0.0, **metrics: float) -> None:
    when = utcnow() - dt.timedelta(seconds=age)
    await registry.publish(PublishedReport(service, address, _report(service, address, status, **metrics), when))


def _envoy_clusters(hosts: dict[str, list[tuple[str, int, dict[str, Any]]]]) -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path != "/clusters":
            return httpx.Response(404)
        return httpx.Response(200, json={"cluster_statuses": [
            {"name": name, "host_statuses": [
                {"address": {"socket_address": {"address": host, "port_value": port}}, "health_status": health}
                for host, port, health in listed]}
            for name, listed in hosts.items()]})

    return httpx.MockTransport(answer)


def test_in_containers_every_instance_that_published_is_listed_with_its_report(tmp_path: Path) -> None:
    async def run() -> list[Any]:
        registry = SqliteInstanceReports(SqliteDatabase(tmp_path / "instances.db", SCHEMA))
        mesh = Mesh("127.0.0.1:9", ["instance"])
        health = SystemHealth(mesh, UNREACHABLE, registry)
        try:
            await _publish(registry, "gateway", "172.18.0.5:3000", SERVING)
            await _publish(registry, "agents", "172.18.0.6:3001", SERVING, ActiveAgentExecutions=2)
            await _publish(registry, "agents", "172.18.0.7:3001", DEGRADED, ActiveAgentExecutions=3)
            await _publish(registry, "tools", "172.18.0.8:3002", NOT_SERVING)
            await _publish(registry, "workflows", "172.18.0.9:3003", SERVING, age=FRESH_SECONDS + 30)  # gone
            states = await health.check()
            metrics = await health.metrics()
            return [states, metrics]
        finally:
            await health.close()
            await mesh.close()

    states, metrics = asyncio.run(run())
    by_service = {s.service: s for s in states}
    assert [(i.address, i.mesh_status, i.report.status if i.report else None) for i in by_service["agents"].instances] == [
        ("172.18.0.6:3001", "healthy", SERVING), ("172.18.0.7:3001", "healthy", DEGRADED)]
    assert by_service["agents"].status == SERVING  # the best healthy instance decides
    assert by_service["gateway"].status == SERVING
    # A NOT_SERVING report is what Envoy's active health check reads from that instance: taken out.
    [tools] = by_service["tools"].instances
    assert tools.mesh_status == "failed_active_health_check" and by_service["tools"].status == NOT_SERVING
    assert by_service["workflows"].instances == [] and by_service["workflows"].status == NOT_SERVING
    assert ("agents", "ActiveAgentExecutions", 5.0) in metrics  # summed over the instances


def test_envoys_remote_hosts_get_their_published_reports_and_local_hosts_are_asked(tmp_path: Path) -> None:
    async def run() -> list[Any]:
        registry = SqliteInstanceReports(SqliteDatabase(tmp_path / "instances.db", SCHEMA))
        mesh = Mesh("127.0.0.1:9", ["instance"])  # no Envoy there: a local host's own answer cannot come
        health = SystemHealth(mesh, "http://envoy-admin", registry)
        await health._admin.aclose()
        health._admin = httpx.AsyncClient(base_url="http://envoy-admin", transport=_envoy_clusters({
            "tools": [("10.0.1.7", 3002, {}), ("10.0.1.8", 3002, {"failed_active_health_check": True}),
                      ("127.0.0.1", 41002, {})],
        }))
        try:
            await _publish(registry, "tools", "10.0.1.7:3002", SERVING)
            await _publish(registry, "tools", "10.0.1.8:3002", NOT_SERVING)
            await _publish(registry, "tools", "127.0.0.1:41002", SERVING)  # local: asked live, not read from here
            await _publish(registry, "tools", "10.0.1.9:3002", SERVING)  # not among Envoy's hosts: not listed
            return await health.check()
        finally:
            await health.close()
            await mesh.close()

    states = asyncio.run(run())
    [tools] = [s for s in states if s.service == "tools"]
    assert [(i.address, i.mesh_status, i.report.status if i.report else None) for i in tools.instances] == [
        ("10.0.1.7:3002", "healthy", SERVING), ("10.0.1.8:3002", "failed_active_health_check", NOT_SERVING),
        ("127.0.0.1:41002", "healthy", None)]
    assert tools.status == SERVING
    # Envoy's view decides which instances exist: a service it lists no host for has none, whatever was published.
    assert all(s.instances == [] and s.status == NOT_SERVING for s in states if s.service != "tools")


class _Unreachable:
    """A registry whose store is down."""

    calls = 0

    async def publish(self, published: PublishedReport) -> None:
        self.calls += 1
        raise ConnectionError("state store unreachable")

    async def recent(self, since: dt.datetime) -> list[PublishedReport]:
        raise ConnectionError("state store unreachable")

    async def withdraw(self, service: str, address: str) -> None:
        raise ConnectionError("state store unreachable")

    def close(self) -> None:
        return None


def test_an_instance_publishes_at_most_every_few_seconds_and_a_registry_outage_does_not_stop_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def run() -> tuple[list[PublishedReport], int]:
        registry = SqliteInstanceReports(SqliteDatabase(tmp_path / "instances.db", SCHEMA))
        publisher = Publisher(registry, "tools", "10.0.1.7:3002", every=60)
        await publisher(_report("tools", "10.0.1.7:3002", SERVING))
        await publisher(_report("tools", "10.0.1.7:3002", NOT_SERVING))  # within the minute: not published
        published = await registry.recent(utcnow() - dt.timedelta(minutes=1))
        await publisher.withdraw()
        assert await registry.recent(utcnow() - dt.timedelta(minutes=1)) == []
        registry.close()
        down = _Unreachable()
        failing = Publisher(down, "tools", "10.0.1.7:3002", every=0)
        for _ in range(3):
            await failing(_report("tools", "10.0.1.7:3002", SERVING))  # raises nothing: serving goes on
        await failing.withdraw()
        return published, down.calls

    published, attempts = asyncio.run(run())
    assert [(p.address, p.report.status) for p in published] == [("10.0.1.7:3002", SERVING)]
    assert attempts == 3  # tried each time
    assert [r.getMessage() for r in caplog.records if r.name == "mcpmesh.instance_reports"] == [
        "cannot publish the health report", "cannot withdraw the health report"]  # once per outage, not per try
