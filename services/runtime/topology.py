"""The one topology: services, ports, gRPC names, deadlines and scaling; launcher, mesh, health, Envoy and deploy/ read it."""

from __future__ import annotations

from dataclasses import dataclass, field

# Envoy and shared local ports (DESIGN §1): edge HTTP and HTTPS, the mesh listener, admin (loopback only).
EDGE_PORT = 8080
EDGE_HTTPS_PORT = 8443
MESH_PORT = 10000
ADMIN_PORT = 9901
# The gateway's WebSocket endpoint behind Envoy's /ws route (plain HTTP/1.1).
WEBSOCKET_PORT = 3100

# Route timeout for anything not owned by a service (DESIGN §2).
DEFAULT_DEADLINE = 30.0
# Server streams have no overall deadline, only this idle limit.
STREAM_IDLE_SECONDS = 3600.0
# Service discovery name space: Cloud Map in ECS, the mesh listener's virtual host domains locally.
NAMESPACE = "mcp.local"


@dataclass(frozen=True)
class Scaling:
    """ECS service autoscaling (DESIGN §2): task count range and the target-tracking figures."""

    min_tasks: int
    max_tasks: int
    cpu_percent: float | None = None
    memory_percent: float | None = None
    requests_per_target: float | None = None
    latency_ms: float | None = None
    # Custom CloudWatch metric name -> target value per task.
    custom: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class Service:
    """One service of the mesh: its name (also its Envoy cluster and mesh host), port, contract and deadline."""

    name: str
    port: int
    grpc_service: str
    deadline: float
    scaling: Scaling
    # Services it calls through the mesh.
    calls: tuple[str, ...] = ()
    # Plain HTTP port beside gRPC (the gateway's WebSocket endpoint), 0 when none.
    http_port: int = 0
    # Task size in ECS (DESIGN §2: 0.5 vCPU, 1 GiB).
    cpu_units: int = 512
    memory_mib: int = 1024
    # The custom metrics this service reports: in its health report, as Prometheus gauges and in EMF lines.
    metrics: tuple[str, ...] = field(default=())

    @property
    def proto_prefix(self) -> str:
        """`/mcpmesh.<name>.v1.`: the gRPC path prefix of this service's own contract."""
        return "/" + self.grpc_service.rsplit(".", 1)[0] + "."

    @property
    def host(self) -> str:
        """Its name in the service-discovery namespace (Cloud Map, Service Connect)."""
        return f"{self.name}.{NAMESPACE}"


SERVICES: tuple[Service, ...] = (
    Service(
        "gateway", 3000, "mcpmesh.gateway.v1.GatewayService", 30.0,
        Scaling(2, 10, cpu_percent=70, requests_per_target=1000),
        calls=("agents", "tools", "workflows"), http_port=WEBSOCKET_PORT,
    ),
    Service(
        "agents", 3001, "mcpmesh.agents.v1.AgentService", 120.0,
        Scaling(2, 20, memory_percent=75, custom=(("ActiveAgentExecutions", 10),)),
        metrics=("ActiveAgentExecutions",),
    ),
    Service(
        "tools", 3002, "mcpmesh.tools.v1.ToolService", 60.0,
        Scaling(1, 15, cpu_percent=60, latency_ms=500),
        metrics=("ToolExecutionQueue",),
    ),
    Service(
        "workflows", 3003, "mcpmesh.workflows.v1.WorkflowService", 300.0,
        # Queue depth: runs waiting to start (WorkflowQueueDepth).
        Scaling(2, 25, custom=(("ActiveWorkflows", 50), ("WorkflowQueueDepth", 100))),
        calls=("agents", "tools"), metrics=("ActiveWorkflows", "WorkflowQueueDepth"),
    ),
)
NAMES: tuple[str, ...] = tuple(s.name for s in SERVICES)
BY_NAME = {s.name: s for s in SERVICES}
DEFAULT_PORTS = {s.name: s.port for s in SERVICES}
DEADLINES = {s.name: s.deadline for s in SERVICES}


def service(name: str) -> Service:
    try:
        return BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown service {name!r}; expected one of {', '.join(NAMES)}") from None


def deadline(name: str) -> float:
    """The route timeout of calls to `name`, in seconds; the default for anything that is not a service."""
    return DEADLINES.get(name, DEFAULT_DEADLINE)


def max_instances(name: str) -> int | None:
    """Most local processes a service may run; None when unbounded.

    The one place this rule lives: none now, as workflow runs are held by leases that instances share."""
    return None
