"""The code_analysis workflow: the Code Analyzer agent and the file_inventory tool in parallel, then one merged result."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from services.agents.base import SEVERITIES
from services.runtime.workspace import path_input_schema
from services.workflows.reports import artifact_refs, finding_counts
from services.workflows.steps import StepCalls, StepHook, WorkflowType, idempotency_key, step


class CodeAnalysisState(TypedDict, total=False):
    path: str
    analysis: dict[str, Any]
    inventory: dict[str, Any]
    result: dict[str, Any]
    completed: Annotated[list[str], operator.add]


def merge_result(analysis: dict[str, Any], inventory: dict[str, Any]) -> dict[str, Any]:
    """The agent's run and the inventory as one result. Counts come from the agent, which saw every finding;
    the findings list it sends is a bounded selection (the rest: ListAgentRunFindings on `agent_run`)."""
    findings = analysis.get("findings", [])
    reported = analysis.get("finding_counts") or finding_counts(findings)
    counts = {name: int(reported.get(name, 0)) for name in SEVERITIES}
    total = int(analysis.get("total_findings") or len(findings))
    languages = ", ".join(f"{lang['language']} {lang['files']}" for lang in inventory.get("languages", [])[:5])
    # The agent's summary already says whether its model step ran.
    summary = f"{inventory.get('total_files', 0)} files, {inventory.get('total_lines', 0)} lines ({languages}). {analysis.get('summary', '')}"
    return {
        "summary": summary.strip(),
        "finding_counts": counts,
        "total_findings": total,
        "findings": findings,
        "findings_truncated": bool(analysis.get("findings_truncated")) or total > len(findings),
        "code_stats": {**analysis.get("metrics", {}), **analysis.get("usage", {})},
        "agent_run": analysis.get("id", ""),
        "llm_status": analysis.get("llm_status", ""),
        "inventory": inventory,
        "artifacts": artifact_refs(analysis),
    }


def build(calls: StepCalls, hook: StepHook) -> StateGraph:
    async def analyze_code(state: CodeAnalysisState, runtime: Runtime[Any]) -> dict[str, Any]:
        return {"analysis": await calls.run_agent("code-analyzer", {"path": state["path"]}, idempotency_key(runtime))}

    async def inventory_files(state: CodeAnalysisState, runtime: Runtime[Any]) -> dict[str, Any]:
        return {"inventory": await calls.execute_tool("file_inventory", {"path": state["path"]}, idempotency_key(runtime))}

    async def merge(state: CodeAnalysisState, runtime: Runtime[Any]) -> dict[str, Any]:
        return {"result": merge_result(state["analysis"], state["inventory"])}

    graph = StateGraph(CodeAnalysisState)
    graph.add_node("analyze_code", step(hook, "analyze_code", analyze_code))
    graph.add_node("inventory_files", step(hook, "inventory_files", inventory_files))
    graph.add_node("merge", step(hook, "merge", merge))
    graph.add_edge(START, "analyze_code")
    graph.add_edge(START, "inventory_files")
    graph.add_edge(["analyze_code", "inventory_files"], "merge")
    graph.add_edge("merge", END)
    return graph


CODE_ANALYSIS = WorkflowType(
    name="code_analysis",
    description="Analyses the code of a folder with the Code Analyzer agent while the file_inventory tool lists its "
    "files, languages and lines; then merges both into one result.",
    steps=["analyze_code", "inventory_files", "merge"],
    parameters_schema=path_input_schema(),
    build=build,
    initial_state=lambda parameters: {"path": parameters["path"]},
)
