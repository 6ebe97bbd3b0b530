"""Killing a service: Envoy's active health check marks it unhealthy and the system health report says so."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.launcher.processes import LocalMesh
from tests.conftest import start_mesh, wait_until


@pytest.fixture()
def own_mesh(tmp_path: Path, sample_project: Path) -> Iterator[LocalMesh]:
    """A mesh of its own: this test kills one of its services."""
    # A drain long enough for the SIGTERM test to see NOT_SERVING even on a loaded machine.
    mesh = start_mesh(tmp_path / "data", sample_project.parent, MCPMESH_DRAIN_SECONDS="3")
    yield mesh
    mesh.stop()


def _services(mesh: LocalMesh) -> dict[str, dict]:
    response = httpx.get(f"{mesh.edge_url}/v1/system/health", headers={"Authorization": f"Bearer {mesh.admin_key()}"}, timeout=10)
    assert response.status_code == 200, response.text
    return {s["service"]: s for s in response.json()["services"]}


def test_report_lists_every_service_with_checks(own_mesh: LocalMesh) -> None:
    services = _services(own_mesh)
    assert set(services) == {"gateway", "agents", "tools", "workflows"}
    for name, service in services.items():
        assert service["status"] == "HEALTH_STATUS_SERVING", service
        [instance] = service["instances"]
        assert instance["meshStatus"] == "healthy"
        report = instance["report"]
        assert report["service"] == name and report["version"] and report["uptime"]
        assert {"database", "memory", "disk"} <= {c["name"] for c in report["checks"]}
    assert "ActiveWorkflows" in services["workflows"]["instances"][0]["report"]["metrics"]


def test_killed_service_is_marked_unhealthy(own_mesh: LocalMesh) -> None:
    own_mesh.stop_service("tools", sig=signal.SIGKILL)
    wait_until(lambda: own_mesh.cluster_health()["tools"] != ["healthy"], 20, "Envoy to fail the tools health check")
    wait_until(
        lambda: (s := _services(own_mesh)["tools"])["status"] == "HEALTH_STATUS_NOT_SERVING" and s, 20,
        "the health report to show tools down",
    )
    # Envoy's active health check fails it (outlier detection may eject it first, from the callers' probes).
    wait_until(lambda: "failed_active_health_check" in _services(own_mesh)["tools"]["instances"][0]["meshStatus"], 10,
               "the report to show the failed active health check")

    def gateway_sees_tools_down() -> bool:
        [gateway] = _services(own_mesh)["gateway"]["instances"]
        check = next(c for c in gateway["report"]["checks"] if c["name"] == "external_services")
        return check["status"] == "HEALTH_STATUS_DEGRADED" and "tools serving" not in check["detail"]

    # The services that call tools say so too, within seconds (they probe through the mesh, not just a channel).
    wait_until(gateway_sees_tools_down, 10, "the gateway's own report to show tools unreachable")
    assert _services(own_mesh)["agents"]["status"] == "HEALTH_STATUS_SERVING"
    # With the only host down, calls fail fast with 503 instead of hanging.
    response = httpx.get(f"{own_mesh.edge_url}/v1/tools", headers={"Authorization": f"Bearer {own_mesh.admin_key()}"}, timeout=10)
    assert response.status_code == 503

    own_mesh.start_service("tools")
    own_mesh.wait_healthy(30, ["tools"])
    wait_until(lambda: _services(own_mesh)["tools"]["status"] == "HEALTH_STATUS_SERVING", 20, "tools to report SERVING again")


def test_sigterm_drains_health_first(own_mesh: LocalMesh) -> None:
    """On SIGTERM the standard health service answers NOT_SERVING before the listener closes."""
    process = own_mesh.processes["agents"]
    with grpc.insecure_channel(f"127.0.0.1:{own_mesh.ports.service('agents')}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        assert stub.Check(health_pb2.HealthCheckRequest(), timeout=5).status == health_pb2.HealthCheckResponse.SERVING
        process.send_signal(signal.SIGTERM)

        def not_serving() -> bool:
            try:
                return stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status == health_pb2.HealthCheckResponse.NOT_SERVING
            except grpc.RpcError:
                return False

        wait_until(not_serving, 10, "agents to report NOT_SERVING while draining")
    assert process.wait(20) == 0


def test_every_instance_reports_and_one_down_leaves_the_service_up(tmp_path: Path, sample_project: Path) -> None:
    mesh = start_mesh(tmp_path / "data", sample_project.parent, instances={"agents": 2, "gateway": 2})
    try:
        agents = _services(mesh)["agents"]
        assert len(agents["instances"]) == 2
        reported = {i["report"]["instance"] for i in agents["instances"]}
        assert reported == {i["address"] for i in agents["instances"]}  # each instance answered for itself
        assert len(_services(mesh)["gateway"]["instances"]) == 2

        mesh.stop_service("agents-2", sig=signal.SIGKILL)
        down = mesh.plan["agents-2"].port

        def second_down() -> dict | None:
            agents = _services(mesh)["agents"]
            states = {i["address"]: i for i in agents["instances"]}
            gone = states[f"127.0.0.1:{down}"]
            return agents if "failed_active_health_check" in gone["meshStatus"] and "report" not in gone else None

        agents = wait_until(second_down, 20, "Envoy to fail the second agents instance")
        assert agents["status"] == "HEALTH_STATUS_SERVING"  # the first instance still serves
        metrics = httpx.get(f"{mesh.edge_url}/v1/system/metrics", headers={"Authorization": f"Bearer {mesh.admin_key()}"}).json()
        assert any(m["service"] == "agents" and m["name"] == "ActiveAgentExecutions" for m in metrics["metrics"])
    finally:
        mesh.stop()



def test_without_envoys_admin_every_instance_is_known_by_its_published_report(tmp_path: Path, sample_project: Path) -> None:
    """As in containers: the gateway cannot reach Envoy's admin interface (nor a route to each task); each instance
    publishes its report under its own address, and the system health lists them from there."""
    mesh = start_mesh(tmp_path / "data", sample_project.parent, MCPMESH_ENVOY_ADMIN_URL="http://127.0.0.1:9")
    try:
        def all_published() -> dict[str, dict] | None:
            services = _services(mesh)
            return services if all(service["instances"] for service in services.values()) else None

        services = wait_until(all_published, 20, "every instance to publish its report")
        assert set(services) == {"gateway", "agents", "tools", "workflows"}
        for name, service in services.items():
            assert service["status"] == "HEALTH_STATUS_SERVING", service
            [instance] = service["instances"]
            assert instance["address"] == f"127.0.0.1:{mesh.plan[name].port}" and instance["meshStatus"] == "healthy"
            assert instance["report"]["service"] == name and instance["report"]["instance"] == instance["address"]
            assert {"database", "memory", "disk"} <= {c["name"] for c in instance["report"]["checks"]}
        metrics = httpx.get(f"{mesh.edge_url}/v1/system/metrics", headers={"Authorization": f"Bearer {mesh.admin_key()}"}).json()
        assert any(m["service"] == "workflows" and m["name"] == "ActiveWorkflows" for m in metrics["metrics"])
        mesh.stop_service("tools")  # a clean stop withdraws the instance's entry
        def withdrawn() -> dict | None:
            tools = _services(mesh)["tools"]
            return None if tools["instances"] else tools

        tools = wait_until(withdrawn, 20, "tools to withdraw its entry")
        assert tools["status"] == "HEALTH_STATUS_NOT_SERVING"
    finally:
        mesh.stop()
