"""Wiring of the agents service: config in, running server out."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from mcpmesh.agents.v1 import agent_service_pb2, agent_service_pb2_grpc

from services.agents.base import Limits, ModelClient
from services.agents.catalog import agents
from services.agents.docs.api import ArtifactApi
from services.agents.knowledge.api import GraphApi
from services.agents.knowledge.stores import open_knowledge_stores
from services.agents.model import BedrockModel, BedrockSettings
from services.agents.runner import AgentRunner
from services.agents.runs import RunStore
from services.agents.runs_dynamodb import DynamoDBRunStore, create_tables
from services.agents.runs_sqlite import SCHEMA, SqliteRunStore
from services.agents.servicer import AgentServicer
from services.runtime.config import VERSION, Config
from services.runtime.dynamodb import dynamodb_client
from services.runtime.health_report import (
    SERVING,
    CheckResult,
    HealthReporter,
    database_check,
    disk_check,
    memory_check,
)
from services.runtime.server import Running, start
from services.runtime.state import SqliteDatabase, StateUrl

SERVICE_NAME = agent_service_pb2.DESCRIPTOR.services_by_name["AgentService"].full_name


class Servicer(GraphApi, ArtifactApi, AgentServicer):
    """AgentService: agent runs (AgentServicer), graph queries (GraphApi) and stored artifacts (ArtifactApi)."""


async def open_run_store(url: StateUrl) -> tuple[RunStore, Callable[[], None]]:
    """The run store for the configured state URL, set up and ready, and how to close it; an unknown scheme stops
    the start-up."""
    if url.scheme == "sqlite" and url.path is not None:
        database = SqliteDatabase(url.path, SCHEMA)
        return SqliteRunStore(database), database.close
    if url.scheme == "dynamodb":
        client = dynamodb_client(url)
        await asyncio.to_thread(create_tables, client, url.table_prefix)  # creates only the tables that are missing
        store = DynamoDBRunStore(client, url.table_prefix)
        return store, store.close
    raise SystemExit(f"agents: no agent run store for state URL scheme {url.scheme!r} (have: sqlite, dynamodb)")


def open_model(config: Config) -> ModelClient | None:
    """Bedrock when a model id is configured; otherwise none, and the agents say their model step did not run."""
    if not config.bedrock_model_id:
        return None
    return BedrockModel(BedrockSettings(config.bedrock_model_id, config.bedrock_region, config.bedrock_endpoint_url))


async def build(config: Config) -> Running:
    url = StateUrl.of_service(config.state_url, config.data_dir, "agents")
    store, close_store = await open_run_store(url)
    stores = await open_knowledge_stores(config.data_dir, config.artifacts_url, url)
    runner = AgentRunner(
        agents(stores),
        store,
        roots=config.workspace_roots,
        limits=Limits(max_files=config.max_files),
        model=open_model(config),
        data_dir=config.data_dir,
    )

    async def llm_check() -> CheckResult:
        if runner.model is None:
            return SERVING, "no model configured: agents return deterministic static analysis and say so"
        return SERVING, f"Bedrock model {runner.model.model_id} configured in {config.bedrock_region}"

    reporter = HealthReporter(
        service="agents",
        version=VERSION,
        checks={
            "database": database_check(store.ping, url.path.name if url.path else url.scheme),
            "external_services": llm_check,
            "memory": memory_check(),
            "disk": disk_check(config.data_dir),
            **stores.checks(),
        },
        metrics=lambda: {"ActiveAgentExecutions": float(runner.active)},
    )

    def add(server: Any) -> list[str]:
        agent_service_pb2_grpc.add_AgentServiceServicer_to_server(
            Servicer(runner, graphs=stores.queries, artifacts=stores.artifacts), server
        )
        return [SERVICE_NAME]

    running = await start(config, reporter, add)

    running.on_stop.append(close_store)
    running.on_stop.append(stores.close)
    return running
