"""Roles declared in the contracts: every method of every service has one, and a server without one won't start."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, empty_pb2
from mcpmesh.auth.v1 import annotations_pb2

from services.runtime import topology
from services.runtime.config import VERSION, Config
from services.runtime.health_report import HealthReporter
from services.runtime.identity import ROLES
from services.runtime.roles import PUBLIC_SERVICES, MissingRole, all_services, method_roles, role_of
from services.runtime.roles import service as service_descriptor
from services.runtime.server import start

DESCRIPTOR_SET = Path(__file__).resolve().parents[2] / "envoy" / "mcpmesh.pb"


def test_every_method_of_every_contract_declares_a_role() -> None:
    """Walks the descriptor set built from proto/ (not a list in code), so a new service is covered too."""
    files = descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR_SET.read_bytes()).file
    walked = 0
    for file in files:
        if not file.package.startswith("mcpmesh."):
            continue
        for service in file.service:
            for method in service.method:
                declared = method.options.Extensions[annotations_pb2.required_role]
                assert declared != annotations_pb2.ROLE_UNSPECIFIED, f"{file.package}.{service.name}.{method.name}"
                walked += 1
    assert walked >= 30


def test_the_runtime_knows_every_service_of_the_descriptor_set() -> None:
    files = descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR_SET.read_bytes()).file
    on_disk = {f"{f.package}.{s.name}" for f in files if f.package.startswith("mcpmesh.") for s in f.service}
    assert {s.full_name for s in all_services()} == on_disk


def test_roles_match_the_contract_enum() -> None:
    names = [annotations_pb2.Role.Name(n) for n in annotations_pb2.Role.values() if n]
    assert names == [*(f"ROLE_{r.upper()}" for r in ROLES), "ROLE_PUBLIC"]


def test_only_the_public_keys_are_declared_public() -> None:
    public = [m for m, role in method_roles(all_services()).items() if role is None]
    assert public == ["/mcpmesh.gateway.v1.GatewayService/GetJwks"]


@pytest.mark.parametrize(
    ("method", "role"),
    [
        ("/mcpmesh.workflows.v1.WorkflowService/GetWorkflow", "viewer"),
        ("/mcpmesh.workflows.v1.WorkflowService/CreateWorkflow", "operator"),
        ("/mcpmesh.workflows.v1.WorkflowService/CancelWorkflow", "operator"),
        ("/mcpmesh.agents.v1.AgentService/RunAgent", "operator"),
        ("/mcpmesh.tools.v1.ToolService/ExecuteTool", "viewer"),
        ("/mcpmesh.tools.v1.ToolService/RegisterMcpServer", "admin"),
        ("/mcpmesh.tools.v1.ToolService/GrantToolPermission", "admin"),
        ("/mcpmesh.gateway.v1.GatewayService/CreateApiKey", "admin"),
        ("/mcpmesh.gateway.v1.GatewayService/ListApiKeys", "admin"),
        ("/mcpmesh.gateway.v1.GatewayService/GetWhoAmI", "viewer"),
        ("/mcpmesh.health.v1.HealthReportService/GetHealthReport", "viewer"),
    ],
)
def test_declared_roles(method: str, role: str) -> None:
    assert role_of(*method.strip("/").split("/")) == role


def test_standard_health_and_reflection_are_public_by_design() -> None:
    assert role_of("grpc.health.v1.Health", "Check") is None
    assert role_of("grpc.reflection.v1alpha.ServerReflection", "ServerReflectionInfo") is None
    assert all(not name.startswith("mcpmesh.") for name in PUBLIC_SERVICES)


def test_services_behind_the_edge_all_have_roles() -> None:
    behind = [service_descriptor(topology.service(name).grpc_service) for name in topology.service("gateway").calls]
    roles = method_roles(behind)
    assert len(roles) == sum(len(d.methods) for d in behind)
    assert set(roles.values()) <= set(ROLES)  # nothing the edge's ext_authz checks is public


def _roleless_service() -> str:
    """A contract with one method and no role option, added to the default pool once."""
    name = "rolestest.v1.Bare"
    pool = descriptor_pool.Default()
    try:
        pool.FindServiceByName(name)
    except KeyError:
        file = descriptor_pb2.FileDescriptorProto(name="rolestest/v1/bare.proto", package="rolestest.v1", syntax="proto3")
        file.dependency.append(empty_pb2.DESCRIPTOR.name)
        service = file.service.add(name="Bare")
        service.method.add(name="Do", input_type=".google.protobuf.Empty", output_type=".google.protobuf.Empty")
        pool.AddSerializedFile(file.SerializeToString())
    return name


def test_a_method_without_a_role_is_named() -> None:
    with pytest.raises(MissingRole, match=r"rolestest\.v1\.Bare\.Do declares no"):
        role_of(_roleless_service(), "Do")
    with pytest.raises(MissingRole, match="no contract"):
        role_of("nowhere.v1.Ghost", "Do")


async def test_a_server_with_a_roleless_method_refuses_to_start(tmp_path: Path) -> None:
    service = _roleless_service()

    async def do(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return request

    def add(server) -> list[str]:
        server.add_registered_method_handlers(service, {"Do": grpc.unary_unary_rpc_method_handler(do)})
        return [service]

    config = Config(service="bare", port=0, data_dir=tmp_path, workspace_roots=(tmp_path,))
    with pytest.raises(MissingRole):
        await start(config, HealthReporter(service="bare", version=VERSION, checks={}), add)
