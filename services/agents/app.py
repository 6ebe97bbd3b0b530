"""Wiring of the agents service: config in, running server out."""

from __future__ import annotations

import sqlite3
from typing import Any

from mcpmesh.agents.v1 import agent_service_pb2, agent_service_pb2_grpc

from services.agents.catalog import AgentRunner, code_analyzer
from services.agents.runs import SCHEMA, RunStore
from services.agents.servicer import AgentServicer
from services.runtime.config import VERSION, Config
from services.runtime.health_report import (
    SERVING,
    CheckResult,
    HealthReporter,
    database_check,
    disk_check,
    memory_check,
)
from services.runtime.server import Running, start
from services.runtime.sqlite import open_database

SERVICE_NAME = agent_service_pb2.DESCRIPTOR.services_by_name["AgentService"].full_name


async def build(config: Config) -> Running:
    database = open_database(config.data_dir / "agents.db", SCHEMA)
    runner = AgentRunner([code_analyzer(config.workspace_roots)], RunStore(database), config.max_files)

    async def llm_check() -> CheckResult:
        return SERVING, "no LLM configured: agents return deterministic static analysis"

    reporter = HealthReporter(
        service="agents",
        version=VERSION,
        checks={
            "database": database_check(lambda: _ping(database), "agents.db"),
            "external_services": llm_check,
            "memory": memory_check(),
            "disk": disk_check(config.data_dir),
        },
        metrics=lambda: {"ActiveAgentExecutions": float(runner.active)},
    )

    def add(server: Any) -> list[str]:
        agent_service_pb2_grpc.add_AgentServiceServicer_to_server(AgentServicer(runner), server)
        return [SERVICE_NAME]

    running = await start(config, reporter, add)

    running.on_stop.append(database.close)
    return running


async def _ping(database: sqlite3.Connection) -> None:
    """Until this service's stores sit behind an async port: the check the port's ping() will make."""
    database.execute("SELECT 1").fetchone()
