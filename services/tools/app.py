"""Wiring of the tools service: config in, running server out."""

from __future__ import annotations

from typing import Any

from mcpmesh.tools.v1 import tool_service_pb2, tool_service_pb2_grpc

from services.runtime.config import VERSION, Config
from services.runtime.health_report import HealthReporter, database_check, disk_check, memory_check
from services.runtime.server import Running, start
from services.runtime.state import SqliteDatabase, StateUrl
from services.tools.builtin import builtin_tools
from services.tools.permissions import PermissionStore, ToolPolicy
from services.tools.permissions_sqlite import SCHEMA as PERMISSIONS_SCHEMA
from services.tools.permissions_sqlite import SqlitePermissionStore
from services.tools.registry import ToolRegistry
from services.tools.registry_store import RegistryStore
from services.tools.registry_store_sqlite import SCHEMA as REGISTRY_SCHEMA
from services.tools.registry_store_sqlite import SqliteRegistryStore
from services.tools.servicer import ToolServicer

SERVICE_NAME = tool_service_pb2.DESCRIPTOR.services_by_name["ToolService"].full_name


def open_stores(url: StateUrl) -> tuple[PermissionStore, RegistryStore, SqliteDatabase]:
    """The adapters the state URL names; an unknown scheme stops the start-up with a clear message."""
    if url.scheme == "sqlite" and url.path is not None:
        database = SqliteDatabase(url.path, PERMISSIONS_SCHEMA + REGISTRY_SCHEMA)
        return SqlitePermissionStore(database), SqliteRegistryStore(database), database
    raise SystemExit(f"tools: no tool permission or registry store for state URL scheme {url.scheme!r} (have: sqlite)")


async def build(config: Config) -> Running:
    permissions, registrations, database = open_stores(StateUrl.of_service(config.state_url, config.data_dir, "tools"))
    registry = ToolRegistry(builtin_tools(config.workspace_roots, config.max_files), registrations, ToolPolicy(permissions))

    reporter = HealthReporter(
        service="tools",
        version=VERSION,
        checks={
            "database": database_check(permissions.ping, "tools state store"),
            "memory": memory_check(),
            "disk": disk_check(config.data_dir),
        },
        metrics=lambda: {"ToolExecutionQueue": float(registry.active_executions)},
    )

    def add(server: Any) -> list[str]:
        tool_service_pb2_grpc.add_ToolServiceServicer_to_server(ToolServicer(registry, permissions), server)
        return [SERVICE_NAME]

    running = await start(config, reporter, add)

    running.on_stop.append(database.close)
    return running
