"""Nothing answers without credentials except what is public by design: every REST route and gRPC method, walked."""

from __future__ import annotations

import re

import grpc
import httpx
import pytest
from google.api import annotations_pb2

from services.launcher.processes import LocalMesh
from services.runtime.roles import all_services, role_of

METHODS = [(service, method) for service in all_services() for method in service.methods]
PUBLIC = {"/mcpmesh.gateway.v1.GatewayService/GetJwks"}


def _route(method) -> tuple[str, str] | None:
    rule = method.GetOptions().Extensions[annotations_pb2.http]
    for verb in ("get", "post", "delete", "patch", "put"):
        template = getattr(rule, verb)
        if template:
            return verb.upper(), re.sub(r"\{[^}]+\}", "x1", template)
    return None


@pytest.mark.parametrize(("service", "method"), METHODS, ids=[f"{s.name}.{m.name}" for s, m in METHODS])
def test_grpc_without_credentials(mesh: LocalMesh, service, method) -> None:
    path = f"/{service.full_name}/{method.name}"
    with grpc.insecure_channel(f"127.0.0.1:{mesh.ports.edge}") as channel:
        call = (channel.unary_stream if method.server_streaming else channel.unary_unary)(path)
        try:
            result = call(b"", timeout=10)
            if method.server_streaming:
                next(iter(result))
        except grpc.RpcError as error:
            assert path not in PUBLIC, f"{path}: {error.code()}"
            assert error.code() == grpc.StatusCode.UNAUTHENTICATED, f"{path}: {error.code()} {error.details()}"
            return
        assert path in PUBLIC, f"{path} answered without credentials"
        assert role_of(service.full_name, method.name) is None


@pytest.mark.parametrize(("service", "method"), [(s, m) for s, m in METHODS if _route(m)], ids=[f"{s.name}.{m.name}" for s, m in METHODS if _route(m)])
def test_rest_without_credentials(mesh: LocalMesh, service, method) -> None:
    verb, path = _route(method)  # type: ignore[misc]
    body = {} if verb in ("POST", "PATCH", "PUT") else None
    response = httpx.request(verb, f"{mesh.edge_url}{path}", json=body, timeout=10)
    if f"/{service.full_name}/{method.name}" in PUBLIC:
        assert response.status_code == 200
        return
    assert response.status_code == 401, f"{verb} {path}: {response.status_code} {response.text[:200]}"
    assert response.headers["www-authenticate"].startswith("Bearer ")
    assert response.json()["details"][0]["reason"].endswith("MISSING")


def test_probes_stay_open(mesh: LocalMesh) -> None:
    assert httpx.get(f"{mesh.edge_url}/healthz", timeout=10).status_code == 200
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(f"127.0.0.1:{mesh.ports.edge}") as channel:
        assert health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10).status == 1
