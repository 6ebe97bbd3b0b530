"""System health and metrics: Envoy's view of every instance plus each instance's own report.

Where the gateway reaches Envoy's admin interface (one machine), Envoy lists the hosts and its view of each; a
host on this machine is asked for its report through the mesh's "instance" route. Elsewhere (containers: no
admin interface in reach, no route to each task) the instances come from the instance report registry
(services/runtime/instance_reports.py), where each publishes its report under its own address every few seconds;
an instance's mesh status is then what Envoy's active health check reads from it, the grpc.health.v1 status its
report drives."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
from dataclasses import dataclass, field
from typing import Any

import grpc
import httpx
from mcpmesh.health.v1 import health_pb2, health_pb2_grpc

from services.runtime.clock import utcnow
from services.runtime.instance_reports import FRESH_SECONDS, InstanceReports
from services.runtime.mesh import Mesh
from services.runtime.topology import NAMES as SERVICES

INSTANCE_HEADER = "x-envoy-original-dst-host"  # read by Envoy's ORIGINAL_DST "instance" cluster
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


def _on_this_machine(address: str) -> bool:
    host = address.rpartition(":")[0].strip("[]")
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _status_seen_by_health_checks(report: health_pb2.HealthReport) -> str:
    """What Envoy's active health check reads from an instance: grpc.health.v1, NOT_SERVING only when its report is."""
    return "failed_active_health_check" if report.status == health_pb2.HEALTH_STATUS_NOT_SERVING else "healthy"


class SystemHealth:
    def __init__(self, mesh: Mesh, envoy_admin_url: str, reports: InstanceReports | None = None) -> None:
        self._mesh = mesh  # its channels carry the gateway's service token: detailed reports need a viewer
        self._admin = httpx.AsyncClient(base_url=envoy_admin_url, timeout=2.0)
        self._reports = reports

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

    async def _report(self, address: str) -> health_pb2.HealthReport | None:
        """One instance's own report, fetched through the mesh's "instance" route (loopback hosts only); None
        when it does not answer."""
        stub = health_pb2_grpc.HealthReportServiceStub(self._mesh.channel("instance"))
        try:
            response = await stub.GetHealthReport(
                health_pb2.GetHealthReportRequest(), timeout=3.0, metadata=[(INSTANCE_HEADER, address)]
            )
        except grpc.aio.AioRpcError:
            return None
        return response.report

    async def published(self) -> dict[str, dict[str, health_pb2.HealthReport]]:
        """service -> address -> report, from the registry: what every instance published lately."""
        if self._reports is None:
            return {}
        found: dict[str, dict[str, health_pb2.HealthReport]] = {}
        for entry in await self._reports.recent(utcnow() - dt.timedelta(seconds=FRESH_SECONDS)):
            found.setdefault(entry.service, {})[entry.address] = entry.report
        return found

    async def check(self) -> list[ServiceState]:
        """Every instance Envoy knows of or that published a fresh report, with its own report; a service serves
        when a healthy instance does."""
        try:
            clusters: dict[str, list[Instance]] | None = await self.envoy_clusters()
        except (httpx.HTTPError, ValueError):
            clusters = None  # out of reach (containers): the registry alone
        try:
            published = await self.published()
        except Exception:  # the registry down: Envoy's view and the per-instance route still answer
            published = {}
        instances: dict[str, list[Instance]] = {}
        for service in SERVICES:
            reports = published.get(service, {})
            if clusters is None:
                listed = [Instance(address, _status_seen_by_health_checks(r), r) for address, r in sorted(reports.items())]
            else:
                listed = clusters.get(service, [])
                for instance in listed:
                    if not _on_this_machine(instance.address):
                        instance.report = reports.get(instance.address)
            instances[service] = listed
        # Hosts on this machine answer for themselves through Envoy's "instance" route, which reaches loopback hosts
        # only: the freshest view, and none from a host that died since it last published.
        local = [i for service in SERVICES for i in instances[service] if _on_this_machine(i.address)]
        for instance, report in zip(local, await asyncio.gather(*(self._report(i.address) for i in local))):
            instance.report = report
        states = []
        for service in SERVICES:
            serving = [i.report.status for i in instances[service] if i.mesh_status == "healthy" and i.report is not None]
            # SERVING < DEGRADED < NOT_SERVING: the best healthy instance decides.
            status = min(serving) if serving else health_pb2.HEALTH_STATUS_NOT_SERVING
            states.append(ServiceState(service, status, instances[service]))
        return states

    async def metrics(self) -> list[tuple[str, str, float]]:
        """(service, name, value): scaling gauges summed over each service's instances, and Envoy's upstream counters."""
        totals: dict[tuple[str, str], float] = {}
        for state in await self.check():
            for instance in state.instances:
                for name, value in instance.report.metrics.items() if instance.report is not None else ():
                    totals[(state.service, name)] = totals.get((state.service, name), 0.0) + value
        values = [(service, name, value) for (service, name), value in totals.items()]
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
        if self._reports is not None:
            self._reports.close()
