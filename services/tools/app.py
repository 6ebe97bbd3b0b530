"""Wiring of the tools service: config in, running server out."""

from __future__ import annotations

import sqlite3
from typing import Any

from mcpmesh.tools.v1 import tool_service_pb2, tool_service_pb2_grpc

from services.runtime.config import VERSION, Config
from services.runtime.health_report import HealthReporter, database_check, disk_check, memory_check
from services.runtime.server import Running, start
from services.runtime.sqlite import open_database
from services.tools.builtin import builtin_tools
from services.tools.permissions import SCHEMA, PermissionStore
from services.tools.registry import ToolRegistry
from services.tools.servicer import ToolServicer

SERVICE_NAME = tool_service_pb2.DESCRIPTOR.services_by_name["ToolService"].full_name


async def build(config: Config) -> Running:
    database = open_database(config.data_dir / "tools.db", SCHEMA)
    registry = ToolRegistry(builtin_tools(config.workspace_roots, config.max_files))

    reporter = HealthReporter(
        service="tools",
        version=VERSION,
        checks={"database": database_check(lambda: _ping(database), "tools.db"), "memory": memory_check(), "disk": disk_check(config.data_dir)},
        metrics=lambda: {"ToolExecutionQueue": float(registry.active_executions)},
    )

    def add(server: Any) -> list[str]:
        tool_service_pb2_grpc.add_ToolServiceServicer_to_server(ToolServicer(registry, PermissionStore(database)), server)
        return [SERVICE_NAME]

    running = await start(config, reporter, add)

    running.on_stop.append(database.close)
    return running


async def _ping(database: sqlite3.Connection) -> None:
    """Until this service's stores sit behind an async port: the check the port's ping() will make."""
    database.execute("SELECT 1").fetchone()
