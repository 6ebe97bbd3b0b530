"""The code_analysis LangGraph: the agent and the tool run in parallel on the same folder, then merge."""

from __future__ import annotations

import operator
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Protocol, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

STEPS = ["analyze_code", "inventory_files", "merge"]
SEVERITIES = ("critical", "high", "medium", "low", "info")
LLM_NOTES = {
    "LLM_STATUS_NOT_CONFIGURED": "LLM review not run: no LLM is configured.",
    "LLM_STATUS_SKIPPED": "LLM review skipped at the caller's request.",
    "LLM_STATUS_COMPLETED": "LLM review included.",
    "LLM_STATUS_FAILED": "LLM review failed; static analysis only.",
}


class StepCalls(Protocol):
    """What the graph needs from the other services; the key makes a re-run step idempotent."""

    async def run_agent(self, agent: str, inputs: dict[str, Any], key: str) -> dict[str, Any]: ...

    async def execute_tool(self, tool: str, arguments: dict[str, Any], key: str) -> dict[str, Any]: ...


StepHook = Callable[[str, str, str], Awaitable[None]]  # (workflow id, step, "started"|"succeeded"|"failed: ...")


class CodeAnalysisState(TypedDict, total=False):
    path: str
    analysis: dict[str, Any]
    inventory: dict[str, Any]
    result: dict[str, Any]
    completed: Annotated[list[str], operator.add]


def idempotency_key(runtime: Runtime[Any]) -> str:
    """(thread, checkpoint, task) stays the same when a step is re-run after a crash and resume."""
    info = runtime.execution_info
    if info is None:
        return ""
    return f"{info.thread_id}:{info.checkpoint_id}:{info.task_id}"


def _thread(runtime: Runtime[Any]) -> str:
    return (runtime.execution_info.thread_id or "") if runtime.execution_info else ""


def merge_result(analysis: dict[str, Any], inventory: dict[str, Any]) -> dict[str, Any]:
    findings = analysis.get("findings", [])
    counts = {s: 0 for s in SEVERITIES}
    for finding in findings:
        severity = str(finding.get("severity", "")).removeprefix("SEVERITY_").lower()
        counts[severity] = counts.get(severity, 0) + 1
    languages = ", ".join(f"{lang['language']} {lang['files']}" for lang in inventory.get("languages", [])[:5])
    summary = (
        f"{inventory.get('total_files', 0)} files, {inventory.get('total_lines', 0)} lines ({languages}). "
        f"{analysis.get('summary', '')} {LLM_NOTES.get(analysis.get('llm_status', ''), 'LLM review not run.')}"
    )
    return {
        "summary": summary,
        "finding_counts": counts,
        "findings": findings,
        "code_stats": {**analysis.get("metrics", {}), **analysis.get("usage", {})},
        "agent_run": analysis.get("id", ""),
        "llm_status": analysis.get("llm_status", ""),
        "inventory": inventory,
    }


def build_code_analysis(calls: StepCalls, hook: StepHook) -> StateGraph:
    def step(name: str, body: Callable[[CodeAnalysisState, Runtime[Any]], Awaitable[dict[str, Any]]]) -> Any:
        async def node(state: CodeAnalysisState, runtime: Runtime[Any]) -> dict[str, Any]:
            workflow_id = _thread(runtime)
            await hook(workflow_id, name, "started")
            try:
                update = await body(state, runtime)
            except Exception as exc:
                await hook(workflow_id, name, f"failed: {exc}")
                raise
            await hook(workflow_id, name, "succeeded")
            return {**update, "completed": [name]}

        return node

    async def analyze_code(state: CodeAnalysisState, runtime: Runtime[Any]) -> dict[str, Any]:
        return {"analysis": await calls.run_agent("code-analyzer", {"path": state["path"]}, idempotency_key(runtime))}

    async def inventory_files(state: CodeAnalysisState, runtime: Runtime[Any]) -> dict[str, Any]:
        return {"inventory": await calls.execute_tool("file_inventory", {"path": state["path"]}, idempotency_key(runtime))}

    async def merge(state: CodeAnalysisState, runtime: Runtime[Any]) -> dict[str, Any]:
        return {"result": merge_result(state["analysis"], state["inventory"])}

    graph = StateGraph(CodeAnalysisState)
    graph.add_node("analyze_code", step("analyze_code", analyze_code))
    graph.add_node("inventory_files", step("inventory_files", inventory_files))
    graph.add_node("merge", step("merge", merge))
    graph.add_edge(START, "analyze_code")
    graph.add_edge(START, "inventory_files")
    graph.add_edge(["analyze_code", "inventory_files"], "merge")
    graph.add_edge("merge", END)
    return graph
