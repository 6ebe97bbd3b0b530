"""The knowledge_build workflow: the Knowledge Builder's graph of a folder, kept by reference in one report."""

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


class KnowledgeBuildState(TypedDict, total=False):
    path: str
    options: dict[str, Any]
    result: dict[str, Any]
    completed: Annotated[list[str], operator.add]


def build(calls: StepCalls, hook: StepHook) -> StateGraph:
    async def build_graph(state: KnowledgeBuildState, runtime: Runtime[Any]) -> dict[str, Any]:
        run = await calls.run_agent("knowledge-builder", agent_input(state, "dialect"), idempotency_key(runtime))
        return {"result": {"knowledge": run_report(run)}}

    graph = StateGraph(KnowledgeBuildState)
    graph.add_node("build_graph", step(hook, "build_graph", build_graph))
    graph.add_edge(START, "build_graph")
    graph.add_edge("build_graph", END)
    return graph


KNOWLEDGE_BUILD = WorkflowType(
    name="knowledge_build",
    description="Builds the knowledge graph of a folder with the Knowledge Builder agent: modules, classes, functions, "
    "imports, calls, tables and the entities of its documents, with graph metrics.",
    steps=["build_graph"],
    parameters_schema=with_options(path_input_schema(), dialect=DIALECT_SCHEMA),
    build=build,
    initial_state=initial_state,
)
