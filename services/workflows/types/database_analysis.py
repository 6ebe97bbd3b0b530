"""The database_analysis workflow: the Database Analyzer on a folder of schema and query files, one report."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from services.runtime.workspace import path_input_schema
from services.workflows.reports import run_report
from services.workflows.steps import (
    DIALECT_SCHEMA,
    StepCalls,
    StepHook,
    WorkflowType,
    agent_input,
    idempotency_key,
    initial_state,
    step,
    with_options,
)


class DatabaseAnalysisState(TypedDict, total=False):
    path: str
    options: dict[str, Any]
    result: dict[str, Any]
    completed: Annotated[list[str], operator.add]


def build(calls: StepCalls, hook: StepHook) -> StateGraph:
    async def analyze_database(state: DatabaseAnalysisState, runtime: Runtime[Any]) -> dict[str, Any]:
        run = await calls.run_agent("database-analyzer", agent_input(state, "dialect"), idempotency_key(runtime))
        return {"result": {"database": run_report(run)}}

    graph = StateGraph(DatabaseAnalysisState)
    graph.add_node("analyze_database", step(hook, "analyze_database", analyze_database))
    graph.add_edge(START, "analyze_database")
    graph.add_edge("analyze_database", END)
    return graph


DATABASE_ANALYSIS = WorkflowType(
    name="database_analysis",
    description="Analyses the database schema (DDL files, SQLite databases) and query files of a folder with the "
    "Database Analyzer agent: schema model, findings, index suggestions and an ER diagram.",
    steps=["analyze_database"],
    parameters_schema=with_options(
        path_input_schema("Folder with the schema (.sql DDL, SQLite files) and queries, inside a workspace root."),
        dialect=DIALECT_SCHEMA,
    ),
    build=build,
    initial_state=initial_state,
)
