"""The documentation workflow: the knowledge graph first, then the documents the Documentation Generator writes."""

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


class DocumentationState(TypedDict, total=False):
    path: str
    options: dict[str, Any]
    knowledge: dict[str, Any]
    result: dict[str, Any]
    completed: Annotated[list[str], operator.add]


def build(calls: StepCalls, hook: StepHook) -> StateGraph:
    async def build_graph(state: DocumentationState, runtime: Runtime[Any]) -> dict[str, Any]:
        run = await calls.run_agent("knowledge-builder", agent_input(state, "dialect"), idempotency_key(runtime))
        return {"knowledge": run_report(run)}

    async def write_documents(state: DocumentationState, runtime: Runtime[Any]) -> dict[str, Any]:
        run = await calls.run_agent("documentation-generator", agent_input(state, "dialect", "project"), idempotency_key(runtime))
        return {"result": {"knowledge": state["knowledge"], "documentation": run_report(run)}}

    graph = StateGraph(DocumentationState)
    graph.add_node("build_graph", step(hook, "build_graph", build_graph))
    graph.add_node("write_documents", step(hook, "write_documents", write_documents))
    graph.add_edge(START, "build_graph")
    graph.add_edge("build_graph", "write_documents")
    graph.add_edge("write_documents", END)
    return graph


DOCUMENTATION = WorkflowType(
    name="documentation",
    description="Builds the knowledge graph of a folder, then writes its documentation (API reference, architecture "
    "overview, database schema) with the Documentation Generator agent as Markdown artifacts.",
    steps=["build_graph", "write_documents"],
    parameters_schema=with_options(
        path_input_schema(), dialect=DIALECT_SCHEMA,
        project={"type": "string", "minLength": 1, "maxLength": 100, "description": "Site title; default the folder's name."},
    ),
    build=build,
    initial_state=initial_state,
)
