"""Tests for the workflow types: each graph runs on the real engine with fake agents, in the order its type promises."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from services.runtime.artifacts import ArtifactStore
from services.runtime.artifacts_local import LocalArtifactStore
from services.runtime.errors import InvalidArgument
from services.runtime.state import SqliteDatabase
from services.workflows.engine import WorkflowEngine
from services.workflows.reports import INLINE_BYTES, MAX_FINDINGS, run_report
from services.workflows.store_sqlite import SCHEMA, SqliteWorkflowStore
from services.workflows.types import WORKFLOW_TYPES
from tests.unit.test_workflow_engine import ended, eventually

INVENTORY = {"total_files": 3, "total_lines": 40, "languages": [{"language": "Python", "files": 3, "lines": 40}]}


def agent_run(agent: str, severities: list[str]) -> dict[str, Any]:
    return {
        "id": f"run-{agent}",
        "agent": agent,
        "summary": f"{agent} summary",
        "llm_status": "LLM_STATUS_NOT_CONFIGURED",
        "findings": [{"rule_id": f"R{i}", "severity": f"SEVERITY_{s.upper()}", "file": "a.py", "line": i}
                     for i, s in enumerate(severities, 1)],
        "metrics": {"nodes": 7} if agent == "knowledge-builder" else {},
        "usage": {"files_analyzed": 3},
        "artifacts": [{"name": f"{agent}.md", "media_type": "text/markdown", "content": "# doc\n"}],
    }


RUNS = {
    "code-analyzer": ["high", "low"],
    "database-analyzer": ["medium"],
    "knowledge-builder": [],
    "documentation-generator": ["info"],
}


class RecordingCalls:
    """Answers every agent with a known run; records the order calls start and end in."""

    def __init__(self) -> None:
        self.log: list[str] = []
        self.inputs: dict[str, dict[str, Any]] = {}

    async def run_agent(self, agent: str, inputs: dict[str, Any], key: str) -> dict[str, Any]:
        self.log.append(f"start {agent}")
        self.inputs[agent] = inputs
        await asyncio.sleep(0.05)
        self.log.append(f"end {agent}")
        return agent_run(agent, RUNS[agent])

    async def execute_tool(self, tool: str, arguments: dict[str, Any], key: str) -> dict[str, Any]:
        self.log.append(f"start {tool}")
        await asyncio.sleep(0.05)
        self.log.append(f"end {tool}")
        return dict(INVENTORY)


@asynccontextmanager
async def engine_on(
    tmp_path: Path, calls: RecordingCalls, artifacts: ArtifactStore | None = None
) -> AsyncIterator[WorkflowEngine]:
    database = SqliteDatabase(tmp_path / "w.db", SCHEMA)
    try:
        async with AsyncSqliteSaver.from_conn_string(str(tmp_path / "cp.db")) as saver:
            engine = WorkflowEngine(SqliteWorkflowStore(database), calls, saver, WORKFLOW_TYPES, [tmp_path],
                                    artifacts=artifacts)
            try:
                yield engine
            finally:
                await engine.close()
    finally:
        database.close()


async def finish(engine: WorkflowEngine, type_name: str, path: Path) -> dict[str, Any]:
    workflow = await engine.create(type_name, {"path": str(path)}, "")
    await eventually(ended(engine.store, workflow.id), f"{type_name} to end")
    done = await engine.store.get(workflow.id)
    assert done.state == "succeeded", done.error
    assert [s.state for s in done.steps] == ["succeeded"] * len(done.steps)
    assert done.result is not None
    return done.result


def test_every_type_publishes_an_object_schema_with_a_required_path() -> None:
    names = [t.name for t in WORKFLOW_TYPES]
    assert names == ["code_analysis", "database_analysis", "knowledge_build", "documentation", "repository_review"]
    for workflow_type in WORKFLOW_TYPES:
        schema = workflow_type.parameters_schema
        assert schema["type"] == "object" and schema["required"] == ["path"], workflow_type.name
        assert schema["additionalProperties"] is False


async def test_database_analysis_reports_the_database_analyzer_run(tmp_path: Path) -> None:
    calls = RecordingCalls()
    async with engine_on(tmp_path, calls) as engine:
        result = await finish(engine, "database_analysis", tmp_path)
    database = result["database"]
    assert database["agent_run"] == "run-database-analyzer"
    assert database["finding_counts"] == {"critical": 0, "high": 0, "medium": 1, "low": 0, "info": 0}
    assert [f["rule_id"] for f in database["findings"]] == ["R1"]
    assert calls.inputs == {"database-analyzer": {"path": str(tmp_path)}}


async def test_knowledge_build_keeps_the_graph_by_reference(tmp_path: Path) -> None:
    calls = RecordingCalls()
    async with engine_on(tmp_path, calls) as engine:
        result = await finish(engine, "knowledge_build", tmp_path)
    knowledge = result["knowledge"]
    assert knowledge["metrics"] == {"nodes": 7}
    assert knowledge["artifacts"] == [{  # small: its content stays inline (the size rule)
        "name": "knowledge-builder.md", "media_type": "text/markdown", "bytes": 6,
        "sha256": hashlib.sha256(b"# doc\n").hexdigest(),
        "agent_run": "run-knowledge-builder", "content": "# doc\n",
    }]


async def test_documents_are_kept_in_the_artifact_store_and_only_small_ones_inline(tmp_path: Path) -> None:
    calls = RecordingCalls()
    big = "# report\n" + "x" * (INLINE_BYTES + 1)
    original = calls.run_agent

    async def with_a_big_report(agent: str, inputs: dict[str, Any], key: str) -> dict[str, Any]:
        run = await original(agent, inputs, key)
        run["artifacts"].append({"name": "report.md", "media_type": "text/markdown", "content": big})
        return run

    calls.run_agent = with_a_big_report  # type: ignore[method-assign]
    store = LocalArtifactStore(tmp_path / "artifacts")
    async with engine_on(tmp_path, calls, store) as engine:
        result = await finish(engine, "repository_review", tmp_path)
        checkpoint = await engine._checkpointer.aget_tuple({"configurable": {"thread_id": (await engine.store.list("", 0, 1))[0][0].id}})
    code = result["code"]["artifacts"]
    assert [a["artifact"] for a in code] == ["agent-runs/run-code-analyzer/code-analyzer.md",
                                             "agent-runs/run-code-analyzer/report.md"]
    small, large = code
    assert small["content"] == "# doc\n" and "content" not in large  # over the size rule: by reference only
    assert large["bytes"] == len(big) and large["sha256"] == hashlib.sha256(big.encode()).hexdigest()
    info, content = await store.get(large["artifact"])
    assert content == big.encode() and info.media_type == "text/markdown"
    assert len(result["artifacts"]) == 8
    for ref in result["artifacts"]:
        assert hashlib.sha256((await store.get(ref["artifact"]))[1]).hexdigest() == ref["sha256"]
    # Neither the result nor the run's checkpoints carry the large document.
    assert big not in json.dumps(result)
    assert checkpoint is not None and big not in repr(checkpoint.checkpoint["channel_values"])


async def test_documentation_builds_the_graph_before_the_documents(tmp_path: Path) -> None:
    calls = RecordingCalls()
    async with engine_on(tmp_path, calls) as engine:
        result = await finish(engine, "documentation", tmp_path)
    assert calls.log == ["start knowledge-builder", "end knowledge-builder",
                         "start documentation-generator", "end documentation-generator"]
    assert result["knowledge"]["agent_run"] == "run-knowledge-builder"
    assert result["documentation"]["artifacts"][0]["name"] == "documentation-generator.md"


async def test_repository_review_runs_independent_steps_in_parallel_and_merges_one_report(tmp_path: Path) -> None:
    calls = RecordingCalls()
    async with engine_on(tmp_path, calls) as engine:
        result = await finish(engine, "repository_review", tmp_path)
    first_wave = {"start code-analyzer", "start file_inventory", "start database-analyzer", "start knowledge-builder"}
    assert set(calls.log[:4]) == first_wave  # all four started before any ended
    assert calls.log.index("start documentation-generator") > calls.log.index("end knowledge-builder")
    assert result["finding_counts"] == {"critical": 0, "high": 1, "medium": 1, "low": 1, "info": 1}
    assert result["total_findings"] == 4
    assert result["inventory"] == INVENTORY
    assert [result[s]["agent_run"] for s in ("code", "database", "knowledge", "documentation")] == [
        "run-code-analyzer", "run-database-analyzer", "run-knowledge-builder", "run-documentation-generator"]
    assert len(result["artifacts"]) == 4
    assert result["summary"].startswith("3 files, 40 lines; 4 findings (1 high, 1 medium, 1 low, 1 info).")


@pytest.mark.parametrize("type_name", ["database_analysis", "knowledge_build", "documentation", "repository_review"])
@pytest.mark.parametrize(
    ("parameters", "field"),
    [({}, "workflow.parameters.path"), ({"path": 3}, "workflow.parameters.path"),
     ({"path": "/"}, "workflow.parameters.path"), ({"path": ".", "depth": 2}, "workflow.parameters.depth")],
)
async def test_bad_parameters_are_refused_with_the_field_and_nothing_is_stored(
    tmp_path: Path, type_name: str, parameters: dict[str, Any], field: str
) -> None:
    calls = RecordingCalls()
    async with engine_on(tmp_path, calls) as engine:
        with pytest.raises(InvalidArgument) as error:
            await engine.create(type_name, parameters, "req")
        assert [v.field for v in error.value.violations] == [field]
        assert await engine.store.changed_since(dt.datetime.min.replace(tzinfo=dt.UTC)) == []
    assert calls.log == []


def test_run_report_bounds_findings_most_severe_first() -> None:
    run = agent_run("code-analyzer", ["low"] * MAX_FINDINGS + ["critical"])
    report = run_report(run)
    assert len(report["findings"]) == MAX_FINDINGS
    assert report["findings"][0]["severity"] == "SEVERITY_CRITICAL"
    assert report["findings_truncated"] is True
    assert report["total_findings"] == MAX_FINDINGS + 1
    assert report["finding_counts"]["low"] == MAX_FINDINGS


async def test_agent_options_reach_the_agents_that_take_them(tmp_path: Path) -> None:
    calls = RecordingCalls()
    async with engine_on(tmp_path, calls) as engine:
        workflow = await engine.create("documentation", {"path": str(tmp_path), "dialect": "sqlite", "project": "Shop"}, "")
        await eventually(ended(engine.store, workflow.id), "the workflow to end")
    assert calls.inputs == {
        "knowledge-builder": {"path": str(tmp_path), "dialect": "sqlite"},
        "documentation-generator": {"path": str(tmp_path), "dialect": "sqlite", "project": "Shop"},
    }


async def test_an_unknown_dialect_is_refused_with_the_field(tmp_path: Path) -> None:
    async with engine_on(tmp_path, RecordingCalls()) as engine:
        with pytest.raises(InvalidArgument) as error:
            await engine.create("repository_review", {"path": str(tmp_path), "dialect": "oracle"}, "")
    assert [v.field for v in error.value.violations] == ["workflow.parameters.dialect"]
