"""The repository_review workflow: every agent and the file inventory on one folder, independent steps in parallel,
documents after the graph, then one merged report."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from services.agents.base import SEVERITIES
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

SECTIONS = ("code", "database", "knowledge", "documentation")


class RepositoryReviewState(TypedDict, total=False):
    path: str
    options: dict[str, Any]
    code: dict[str, Any]
    inventory: dict[str, Any]
    database: dict[str, Any]
    knowledge: dict[str, Any]
    documentation: dict[str, Any]
    result: dict[str, Any]
    completed: Annotated[list[str], operator.add]


def merge_report(state: RepositoryReviewState) -> dict[str, Any]:
    """One report: each agent's section, the inventory, and counts over every section."""
    sections = {name: state[name] for name in SECTIONS}  # type: ignore[literal-required]
    counts = {s: sum(section["finding_counts"].get(s, 0) for section in sections.values()) for s in SEVERITIES}
    inventory = state["inventory"]
    summary = (
        f"{inventory.get('total_files', 0)} files, {inventory.get('total_lines', 0)} lines; "
        f"{sum(counts.values())} findings ({', '.join(f'{n} {s}' for s, n in counts.items() if n)}). "
        + " ".join(f"{name.capitalize()}: {section['summary']}" for name, section in sections.items() if section["summary"])
    )
    return {
        "summary": summary.strip(),
        "finding_counts": counts,
        "total_findings": sum(section["total_findings"] for section in sections.values()),
        "inventory": {k: inventory.get(k) for k in ("total_files", "total_lines", "languages") if k in inventory},
        **sections,
        "artifacts": [ref for section in sections.values() for ref in section["artifacts"]],
    }


def build(calls: StepCalls, hook: StepHook) -> StateGraph:
    def agent(name: str, field: str, *options: str) -> Any:
        async def body(state: RepositoryReviewState, runtime: Runtime[Any]) -> dict[str, Any]:
            inputs = agent_input(state, *options)
            return {field: run_report(await calls.run_agent(name, inputs, idempotency_key(runtime)))}

        return body

    async def inventory_files(state: RepositoryReviewState, runtime: Runtime[Any]) -> dict[str, Any]:
        return {"inventory": await calls.execute_tool("file_inventory", {"path": state["path"]}, idempotency_key(runtime))}

    async def report(state: RepositoryReviewState, runtime: Runtime[Any]) -> dict[str, Any]:
        return {"result": merge_report(state)}

    graph = StateGraph(RepositoryReviewState)
    graph.add_node("analyze_code", step(hook, "analyze_code", agent("code-analyzer", "code")))
    graph.add_node("inventory_files", step(hook, "inventory_files", inventory_files))
    graph.add_node("analyze_database", step(hook, "analyze_database", agent("database-analyzer", "database", "dialect")))
    graph.add_node("build_graph", step(hook, "build_graph", agent("knowledge-builder", "knowledge", "dialect")))
    graph.add_node("write_documents", step(hook, "write_documents", agent("documentation-generator", "documentation", "dialect")))
    graph.add_node("report", step(hook, "report", report))
    for first in ("analyze_code", "inventory_files", "analyze_database", "build_graph"):
        graph.add_edge(START, first)
    graph.add_edge("build_graph", "write_documents")
    graph.add_edge(["analyze_code", "inventory_files", "analyze_database", "write_documents"], "report")
    graph.add_edge("report", END)
    return graph


REPOSITORY_REVIEW = WorkflowType(
    name="repository_review",
    description="Reviews a whole folder: code analysis, file inventory, database analysis and the knowledge graph in "
    "parallel, documentation once the graph is built, then one merged report.",
    steps=["analyze_code", "inventory_files", "analyze_database", "build_graph", "write_documents", "report"],
    parameters_schema=with_options(path_input_schema(), dialect=DIALECT_SCHEMA),
    build=build,
    initial_state=initial_state,
)
