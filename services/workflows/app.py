"""Wiring of the workflows service: config in, running server out."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph_checkpoint_aws import DynamoDBSaver  # type: ignore[import-untyped]
from mcpmesh.workflows.v1 import workflow_service_pb2, workflow_service_pb2_grpc

from services.runtime.artifacts import open_artifact_store
from services.runtime.config import VERSION, Config
from services.runtime.health_report import HealthReporter, database_check, disk_check, memory_check
from services.runtime.mesh import Mesh
from services.runtime.server import Running, start
from services.runtime.service_tokens import service_credentials
from services.runtime.state import SqliteDatabase, StateUrl
from services.workflows.checkpoints import open_sqlite_checkpoints
from services.workflows.clients import MeshStepCalls
from services.workflows.engine import Durability, WorkflowEngine
from services.workflows.servicer import WorkflowServicer
from services.workflows.store import WorkflowStore
from services.workflows.store_dynamodb import (
    DynamoDBWorkflowStore,
    create_tables,
    dynamodb_client,
    table_names,
    whole_task_writes,
)
from services.workflows.store_sqlite import SCHEMA, SqliteWorkflowStore
from services.workflows.types import WORKFLOW_TYPES

SERVICE_NAME = workflow_service_pb2.DESCRIPTOR.services_by_name["WorkflowService"].full_name


async def open_state(config: Config, stack: AsyncExitStack) -> tuple[WorkflowStore, BaseCheckpointSaver]:
    """The WorkflowStore adapter and the LangGraph checkpointer the state URL names, set up and ready."""
    url = StateUrl.of_service(config.state_url, config.data_dir, "workflows")
    if url.scheme == "sqlite" and url.path is not None:
        database = SqliteDatabase(url.path, SCHEMA)
        stack.callback(database.close)
        return await SqliteWorkflowStore.open(database), await open_sqlite_checkpoints(config.data_dir, stack)
    if url.scheme == "dynamodb":
        client = dynamodb_client(url)
        # The adapter's set-up: tables that do not exist yet are created (also DynamoDBSaver's, which it does not make).
        await asyncio.to_thread(create_tables, client, url.table_prefix)
        store = DynamoDBWorkflowStore(client, url.table_prefix)
        stack.callback(store.close)
        checkpoints = whole_task_writes(DynamoDBSaver(table_name=table_names(url.table_prefix)["checkpoints"],
                                                      endpoint_url=url.endpoint or None, region_name=url.region or None))
        return store, checkpoints
    raise SystemExit(f"MCPMESH_STATE_URL: the workflows service has no {url.scheme} store")


async def build(config: Config) -> Running:
    stack = AsyncExitStack()
    store, checkpointer = await open_state(config, stack)
    # Mesh calls carry this service's own token (service_tokens.py); the steps' calls carry one for the workflow's
    # creator instead (MeshStepCalls).
    credentials = await service_credentials(config)
    mesh = Mesh(config.mesh_address, ["agents", "tools"], credentials=credentials.interceptors())
    stack.push_async_callback(mesh.close)
    durability = Durability(config.workflow_lease_seconds, config.workflow_max_active, config.checkpoint_retention_seconds)
    # The agents service's artifact store (same MCPMESH_ARTIFACTS_URL): GET /v1/artifacts serves what runs keep there.
    artifacts = open_artifact_store(config.artifacts_url, config.data_dir)
    engine = WorkflowEngine(store, MeshStepCalls(mesh, credentials), checkpointer, WORKFLOW_TYPES,
                            config.workspace_roots, durability, artifacts)
    stack.push_async_callback(engine.close)

    reporter = HealthReporter(
        service="workflows",
        version=VERSION,
        checks={
            "database": database_check(store.ping, "workflow store"),
            "artifact_store": database_check(artifacts.ping, "artifact store"),
            "external_services": mesh.check,
            "memory": memory_check(),
            "disk": disk_check(config.data_dir),
        },
        metrics=lambda: {"ActiveWorkflows": float(engine.active), "WorkflowQueueDepth": float(engine.queue_depth)},
    )

    def add(server: Any) -> list[str]:
        workflow_service_pb2_grpc.add_WorkflowServiceServicer_to_server(WorkflowServicer(engine), server)
        return [SERVICE_NAME]

    running = await start(config, reporter, add)
    running.on_stop.append(stack.aclose)
    engine.start()  # heartbeat and sweeper: resumes what a stopped or dead instance left, at once and then on
    return running
