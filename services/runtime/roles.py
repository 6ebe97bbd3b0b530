"""The role each RPC needs, read from the `(mcpmesh.auth.v1.required_role)` method option of the contracts.

Every mcpmesh RPC declares one; a server holding a method without one refuses to start. The standard gRPC
health and reflection services are third-party contracts that cannot carry the option: they are public by
design (probes and grpcurl need them), named here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Iterable

from google.protobuf import descriptor_pool
from google.protobuf.descriptor import Descriptor, FileDescriptor, ServiceDescriptor
from mcpmesh.agents.v1 import agent_service_pb2
from mcpmesh.auth.v1 import annotations_pb2
from mcpmesh.gateway.v1 import gateway_service_pb2
from mcpmesh.health.v1 import health_pb2
from mcpmesh.tools.v1 import tool_service_pb2
from mcpmesh.workflows.v1 import workflow_service_pb2

from services.runtime.identity import ROLES

# Every mcpmesh contract file that defines a service (imported so their descriptors are in the default pool).
CONTRACTS: tuple[FileDescriptor, ...] = tuple(
    module.DESCRIPTOR for module in (gateway_service_pb2, agent_service_pb2, tool_service_pb2, workflow_service_pb2, health_pb2)
)

PUBLIC_SERVICES = frozenset(
    {"grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection", "grpc.reflection.v1.ServerReflection"}
)
# Enum number -> role name; built from ROLES so the contract and the code cannot drift apart silently.
# ROLE_PUBLIC is an explicit declaration that anyone may call (None), never a default.
ROLE_OF_OPTION: dict[int, str | None] = {annotations_pb2.Role.Value(f"ROLE_{role.upper()}"): role for role in ROLES}
ROLE_OF_OPTION[annotations_pb2.ROLE_PUBLIC] = None


class MissingRole(SystemExit):
    """A method declares no role: the server must not start (there is no open default)."""


def service(name: str) -> ServiceDescriptor:
    """The descriptor of a service by full name, from the generated code already imported."""
    try:
        return descriptor_pool.Default().FindServiceByName(name)
    except KeyError:
        raise MissingRole(f"{name} has no contract (no descriptor), so no declared roles: it cannot be served") from None


def service_roles(descriptor: ServiceDescriptor) -> dict[str, str | None]:
    """`/pkg.Service/Method` -> role (None: declared public) for every method; raises MissingRole for one without."""
    roles: dict[str, str | None] = {}
    for method in descriptor.methods:
        declared = method.GetOptions().Extensions[annotations_pb2.required_role]
        if declared not in ROLE_OF_OPTION:
            raise MissingRole(
                f"{descriptor.full_name}.{method.name} declares no (mcpmesh.auth.v1.required_role); "
                "add one to its .proto: every RPC must say which role may call it"
            )
        roles[f"/{descriptor.full_name}/{method.name}"] = ROLE_OF_OPTION[declared]
    return roles


def method_roles(descriptors: Iterable[ServiceDescriptor]) -> dict[str, str | None]:
    """The roles of all methods of several services."""
    roles: dict[str, str | None] = {}
    for descriptor in descriptors:
        roles.update(service_roles(descriptor))
    return roles


def all_services() -> list[ServiceDescriptor]:
    """Every service of every mcpmesh contract."""
    return [service for contract in CONTRACTS for service in contract.services_by_name.values()]


def request_type(service_name: str, method: str) -> Descriptor | None:
    """The request message type of `/service/method`, or None for the public third-party services."""
    if service_name in PUBLIC_SERVICES:
        return None
    return service(service_name).methods_by_name[method].input_type


def role_of(service_name: str, method: str) -> str | None:
    """The role `/service/method` needs, or None when the service is public by design."""
    if service_name in PUBLIC_SERVICES:
        return None
    return service_roles(service(service_name))[f"/{service_name}/{method}"]
