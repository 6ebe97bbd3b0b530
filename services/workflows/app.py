"""Wiring of the workflows service: config in, running server out."""

from __future__ import annotations

import sqlite3
from contextlib import AsyncExitStack
from typing import Any

from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from mcpmesh.workflows.v1 import workflow_service_pb2, workflow_service_pb2_grpc

from services.runtime.config import VERSION, Config
from services.runtime.health_report import HealthReporter, database_check, disk_check, memory_check
from services.runtime.mesh import Mesh
from services.runtime.server import Running, start
from services.runtime.sqlite import open_database
from services.workflows.clients import MeshStepCalls
from services.workflows.engine import CODE_ANALYSIS, WorkflowEngine
from services.workflows.servicer import WorkflowServicer
from services.workflows.store import SCHEMA, WorkflowStore

SERVICE_NAME = workflow_service_pb2.DESCRIPTOR.services_by_name["WorkflowService"].full_name


async def build(config: Config) -> Running:
    stack = AsyncExitStack()
    database = open_database(config.data_dir / "workflows.db", SCHEMA)
    stack.callback(database.close)
    # The saver must be made inside the running event loop.
    checkpointer = await stack.enter_async_context(
        AsyncSqliteSaver.from_conn_string(str(config.data_dir / "workflow-checkpoints.db"))
    )
    await checkpointer.setup()
    mesh = Mesh(config.mesh_address, ["agents", "tools"])
    stack.push_async_callback(mesh.close)
    engine = WorkflowEngine(WorkflowStore(database), MeshStepCalls(mesh), checkpointer, [CODE_ANALYSIS])
    stack.push_async_callback(engine.close)

    reporter = HealthReporter(
        service="workflows",
        version=VERSION,
        checks={
            "database": database_check(lambda: _ping(database), "workflows.db"),
            "external_services": mesh.check,
            "memory": memory_check(),
            "disk": disk_check(config.data_dir),
        },
        metrics=lambda: {"ActiveWorkflows": float(engine.active)},
    )

    def add(server: Any) -> list[str]:
        workflow_service_pb2_grpc.add_WorkflowServiceServicer_to_server(WorkflowServicer(engine), server)
        return [SERVICE_NAME]

    running = await start(config, reporter, add)
    running.on_stop.append(stack.aclose)
    engine.resume_unfinished()
    return running


async def _ping(database: sqlite3.Connection) -> None:
    """Until this service's stores sit behind an async port: the check the port's ping() will make."""
    database.execute("SELECT 1").fetchone()
