"""Identity at the edge: what stays open (probes), what needs a key (the detailed report), rate-limit answers."""

from __future__ import annotations

import grpc
import httpx
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2 as std_health_pb2
from grpc_health.v1 import health_pb2_grpc as std_health_pb2_grpc
from grpc_status import rpc_status
from mcpmesh.gateway.v1 import gateway_service_pb2, gateway_service_pb2_grpc
from mcpmesh.health.v1 import health_pb2, health_pb2_grpc

from services.launcher.processes import LocalMesh


def test_detailed_health_report_needs_a_key_but_the_standard_check_does_not(mesh: LocalMesh, admin_key: str) -> None:
    """Before: GetHealthReport answered through the edge without a key, showing the data folder and memory."""
    with grpc.insecure_channel(f"127.0.0.1:{mesh.ports.edge}") as channel:
        report = health_pb2_grpc.HealthReportServiceStub(channel)
        with pytest.raises(grpc.RpcError) as refused:
            report.GetHealthReport(health_pb2.GetHealthReportRequest(), timeout=10)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        answer = report.GetHealthReport(health_pb2.GetHealthReportRequest(), timeout=10,
                                        metadata=[("authorization", f"Bearer {admin_key}")])
        assert answer.report.service == "gateway"
        standard = std_health_pb2_grpc.HealthStub(channel).Check(std_health_pb2.HealthCheckRequest(), timeout=10)
        assert standard.status == std_health_pb2.HealthCheckResponse.SERVING


def test_rate_limited_calls_carry_retry_after_and_retry_info(mesh: LocalMesh, rest: httpx.Client) -> None:
    """Before: 429 without Retry-After, RESOURCE_EXHAUSTED without RetryInfo."""
    secret = rest.post("/v1/api-keys", json={"displayName": "burst", "role": "ROLE_VIEWER"}).json()["secret"]
    with httpx.Client(base_url=mesh.edge_url, headers={"Authorization": f"Bearer {secret}"}, timeout=10) as client:
        for _ in range(3000):
            response = client.get("/v1/whoami")
            if response.status_code == 429:
                break
            assert response.status_code == 200
        assert response.status_code == 429
        assert int(response.headers["retry-after"]) >= 1
        kinds = {d["@type"].rsplit(".", 1)[-1]: d for d in response.json()["details"]}
        assert kinds["ErrorInfo"]["reason"] == "RATE_LIMITED"
        assert "retryDelay" in kinds["RetryInfo"]
    with grpc.insecure_channel(f"127.0.0.1:{mesh.ports.edge}") as channel:
        stub = gateway_service_pb2_grpc.GatewayServiceStub(channel)
        with pytest.raises(grpc.RpcError) as limited:
            for _ in range(3000):
                stub.GetWhoAmI(gateway_service_pb2.GetWhoAmIRequest(), metadata=[("authorization", f"Bearer {secret}")], timeout=10)
        assert limited.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        status = rpc_status.from_call(limited.value)
        assert status is not None
        retry = [d for d in status.details if d.Is(error_details_pb2.RetryInfo.DESCRIPTOR)]
        assert len(retry) == 1


def test_plain_readiness_is_open_and_says_nothing(mesh: LocalMesh) -> None:
    response = httpx.get(f"{mesh.edge_url}/healthz", timeout=10)
    assert response.status_code == 200
    assert len(response.content) < 64  # no folders, addresses or memory figures


def test_a_direct_call_to_a_service_port_cannot_claim_a_role(mesh: LocalMesh, admin_key: str) -> None:
    """Before: services trusted x-mcpmesh-principal / x-mcpmesh-role, so a direct caller could claim admin."""
    from mcpmesh.workflows.v1 import workflow_service_pb2, workflow_service_pb2_grpc

    forged = [("x-mcpmesh-principal", "key:root"), ("x-mcpmesh-role", "admin")]
    for credentials in ([], forged, [("authorization", f"Bearer {admin_key}")]):  # a raw key is for the edge only
        with grpc.insecure_channel(f"127.0.0.1:{mesh.ports.service('workflows')}") as channel:
            stub = workflow_service_pb2_grpc.WorkflowServiceStub(channel)
            with pytest.raises(grpc.RpcError) as refused:
                stub.ListWorkflows(workflow_service_pb2.ListWorkflowsRequest(), metadata=credentials, timeout=10)
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    # Through the edge the same key works: the gateway checks it and hands the service a token it verifies.
    with grpc.insecure_channel(f"127.0.0.1:{mesh.ports.edge}") as channel:
        stub = workflow_service_pb2_grpc.WorkflowServiceStub(channel)
        stub.ListWorkflows(workflow_service_pb2.ListWorkflowsRequest(), metadata=[("authorization", f"Bearer {admin_key}")], timeout=10)
