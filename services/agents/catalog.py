"""The agents this server runs, and the run loop around them: records, idempotency, LLM status."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from services.agents.code_analyzer import CodeAnalysis, analyze_path
from services.agents.runs import AgentRun, RunStore
from services.runtime.arguments import check_arguments
from services.runtime.errors import InvalidArgument, NotFound
from services.runtime.protos import utcnow
from services.runtime.workspace import resolve_folder_argument

PATH_INPUT_SCHEMA = {
    "type": "object",
    "properties": {"path": {"type": "string", "description": "Folder to analyse, inside a workspace root."}},
    "required": ["path"],
    "additionalProperties": False,
}


@dataclass(frozen=True)
class AgentSpec:
    name: str
    display_name: str
    description: str
    input_schema: dict[str, Any]
    analyse: Callable[[dict[str, Any], int], AgentRun]  # input, max_files -> filled run (id and times unset)


def _summary(analysis: CodeAnalysis) -> str:
    stats = analysis.stats
    by_severity = Counter(f.severity for f in analysis.findings)
    counts = ", ".join(f"{by_severity[s]} {s}" for s in ("critical", "high", "medium", "low", "info") if by_severity[s])
    return (
        f"Analysed {stats.files_analyzed} Python files ({stats.lines} lines, {stats.functions} functions, "
        f"{stats.classes} classes): {len(analysis.findings)} findings" + (f" ({counts})." if counts else ".")
    )


def _report(analysis: CodeAnalysis, summary: str) -> str:
    lines = ["# Code analysis", "", summary, "", "| rule | severity | where | message |", "|---|---|---|---|"]
    lines += [f"| {f.rule_id} | {f.severity} | {f.file}:{f.line} | {f.message} |" for f in analysis.findings]
    return "\n".join(lines) + "\n"


def code_analyzer(roots: Sequence[Path]) -> AgentSpec:
    def analyse(arguments: dict[str, Any], max_files: int) -> AgentRun:
        check_arguments(PATH_INPUT_SCHEMA, arguments, "input")
        root = resolve_folder_argument(arguments.get("path"), roots, "input.path")
        analysis = analyze_path(root, max_files=max_files)
        summary = _summary(analysis)
        stats = analysis.stats
        return AgentRun(
            id="",
            agent="code-analyzer",
            input=arguments,
            state="succeeded",
            created=utcnow(),
            findings=list(analysis.findings),
            artifacts=[{"name": "report.md", "media_type": "text/markdown", "content": _report(analysis, summary)}],
            metrics={"functions": stats.functions, "classes": stats.classes, "findings": len(analysis.findings)},
            usage={"files_analyzed": stats.files_analyzed, "files_skipped": stats.files_skipped, "lines_analyzed": stats.lines},
            summary=summary,
            truncated=analysis.truncated,
        )

    return AgentSpec(
        name="code-analyzer",
        display_name="Code Analyzer",
        description="Static analysis and security scan of Python code with the AST: quality, complexity and "
        "security findings per file and line.",
        input_schema=PATH_INPUT_SCHEMA,
        analyse=analyse,
    )


class AgentRunner:
    """Runs agents off the event loop and records each run; no LLM is configured in this version."""

    def __init__(self, agents: Sequence[AgentSpec], store: RunStore, max_files: int) -> None:
        self._agents = {a.name: a for a in agents}
        self._store = store
        self._max_files = max_files
        self.active = 0

    def list(self) -> list[AgentSpec]:
        return sorted(self._agents.values(), key=lambda a: a.name)

    def get(self, name: str) -> AgentSpec:
        if not name:
            raise InvalidArgument.field("name", "is required")
        agent = self._agents.get(name)
        if agent is None:
            raise NotFound(f"agent {name!r} does not exist", reason="AGENT_NOT_FOUND", metadata={"agent": name})
        return agent

    async def run(self, name: str, arguments: dict[str, Any], *, max_files: int, disable_llm: bool, key: str) -> AgentRun:
        agent = self.get(name)
        if max_files < 0:
            raise InvalidArgument.field("options.max_files", "must not be negative")
        if key and (earlier := self._store.find_by_key(key)) is not None:
            return earlier
        started, created = time.perf_counter(), utcnow()
        self.active += 1
        try:
            result = await asyncio.to_thread(agent.analyse, arguments, min(max_files or self._max_files, self._max_files))
        finally:
            self.active -= 1
        run = replace(
            result,
            id=uuid.uuid4().hex,
            created=created,
            ended=utcnow(),
            llm_status="skipped" if disable_llm else "not_configured",
            usage={**result.usage, "duration_ms": int((time.perf_counter() - started) * 1000)},
        )
        self._store.save(run, key)
        return run

    def get_run(self, run_id: str) -> AgentRun:
        if not run_id:
            raise InvalidArgument.field("id", "is required")
        return self._store.get(run_id)
