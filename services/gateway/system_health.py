"""System health and metrics: Envoy's view of every instance plus each service's own report."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import grpc
import httpx
from mcpmesh.health.v1 import health_pb2, health_pb2_grpc

from services.runtime.health_report import HealthReporter
from services.runtime.mesh import Mesh

SERVICES = ("gateway", "agents", "tools", "workflows")
ENVOY_COUNTERS = ("upstream_rq_total", "upstream_rq_5xx", "upstream_rq_active", "upstream_cx_active")


@dataclass
class Instance:
    address: str
    mesh_status: str
    report: health_pb2.HealthReport | None = None


@dataclass
class ServiceState:
    service: str
    status: health_pb2.HealthStatus.ValueType
    instances: list[Instance] = field(default_factory=list)


def _mesh_status(health: dict[str, Any]) -> str:
    flags = [name for name, value in health.items() if value is True and name.startswith("failed")]
    if flags:
        return ",".join(sorted(flags))
    if health.get("eds_health_status", "HEALTHY") != "HEALTHY":
        return str(health["eds_health_status"]).lower()
    return "healthy"


class SystemHealth:
    def __init__(self, mesh: Mesh, envoy_admin_url: str, own_report: HealthReporter) -> None:
        self._mesh = mesh
        self._admin = httpx.AsyncClient(base_url=envoy_admin_url, timeout=2.0)
        self._own = own_report

    async def envoy_clusters(self) -> dict[str, list[Instance]]:
        response = await self._admin.get("/clusters", params={"format": "json"})
        response.raise_for_status()
        clusters: dict[str, list[Instance]] = {}
        for cluster in response.json().get("cluster_statuses", []):
            instances = []
            for host in cluster.get("host_statuses", []):
                socket = host.get("address", {}).get("socket_address", {})
                address = f"{socket.get('address')}:{socket.get('port_value')}"
                instances.append(Instance(address, _mesh_status(host.get("health_status", {}))))
            clusters[cluster["name"]] = instances
        return clusters

    async def _report(self, service: str) -> health_pb2.HealthReport | None:
        if service == "gateway":
            return await self._own.report()
        stub = health_pb2_grpc.HealthReportServiceStub(self._mesh.channel(service))
        try:
            response = await stub.GetHealthReport(health_pb2.GetHealthReportRequest(), timeout=3.0)
        except grpc.aio.AioRpcError:
            return None
        return response.report

    async def check(self) -> list[ServiceState]:
        try:
            clusters = await self.envoy_clusters()
        except (httpx.HTTPError, ValueError):
            clusters = {}
        reports = await asyncio.gather(*(self._report(s) for s in SERVICES))
        states = []
        for service, report in zip(SERVICES, reports):
            instances = clusters.get(service, [])
            for instance in instances:
                # Same port: the report says the address it bound, which may be a wildcard.
                if report is not None and report.instance.rsplit(":", 1)[-1] == instance.address.rsplit(":", 1)[-1]:
                    instance.report = report
            healthy = any(i.mesh_status == "healthy" for i in instances)
            if healthy and report is not None:
                status = report.status
            else:
                status = health_pb2.HEALTH_STATUS_NOT_SERVING
            states.append(ServiceState(service, status, instances))
        return states

    async def metrics(self) -> list[tuple[str, str, float]]:
        """(service, name, value): each service's scaling gauges and Envoy's upstream counters."""
        values: list[tuple[str, str, float]] = []
        reports = await asyncio.gather(*(self._report(s) for s in SERVICES))
        for service, report in zip(SERVICES, reports):
            if report is not None:
                values += [(service, name, value) for name, value in report.metrics.items()]
        try:
            response = await self._admin.get("/stats", params={"format": "json", "filter": r"^cluster\.\w+\.upstream_(rq|cx)_"})
            stats = response.json().get("stats", [])
        except (httpx.HTTPError, ValueError):
            stats = []
        for stat in stats:
            parts = stat.get("name", "").split(".")
            if len(parts) == 3 and parts[1] in SERVICES and parts[2] in ENVOY_COUNTERS and "value" in stat:
                values.append((parts[1], f"envoy.{parts[2]}", float(stat["value"])))
        return sorted(values)

    async def close(self) -> None:
        await self._admin.aclose()
