"""The agent runner and servicer: idempotency scoped by caller, bounded run messages, deadline and cancellation."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from mcpmesh.agents.v1 import agent_service_pb2

from services.agents.base import AgentSpec, FileSpan, Finding, Limits, RunContext, RunResult
from services.agents.runner import AgentRunner, RunOptions
from services.agents.runs_sqlite import SCHEMA, SqliteRunStore
from services.agents.servicer import AgentServicer
from services.runtime.errors import DomainError, FailedPrecondition, InvalidArgument
from services.runtime.identity import Identity
from services.runtime.protos import to_struct
from services.runtime.state import SqliteDatabase
from services.runtime.workspace import path_input_schema

ADMIN = Identity("key:admin", "admin")
OPERATOR = Identity("key:operator", "operator")


def _many(arguments: dict[str, Any], context: RunContext) -> RunResult:
    """An agent that reports `count` low findings spread over ten files, plus one critical one in the last file."""
    folder = context.folder(arguments)
    count = 6000
    findings = [
        Finding("LOW1", "test", "low", f"low {i}", FileSpan(f"f{i % 10}.py", i + 1)) for i in range(count)
    ]
    findings.append(Finding("CRIT", "test", "critical", "the one that matters", FileSpan("f9.py", count + 5)))
    return RunResult(findings=sorted(findings, key=Finding.sort_key), summary=folder.name, files_analyzed=10)


def _slow(arguments: dict[str, Any], context: RunContext) -> RunResult:
    while True:  # a long analysis that checks for cancel and deadline between units of work
        context.check()
        time.sleep(0.01)


SLOW_STOPPED = threading.Event()


def _slow_tracked(arguments: dict[str, Any], context: RunContext) -> RunResult:
    try:
        return _slow(arguments, context)
    finally:
        SLOW_STOPPED.set()


def _counting(arguments: dict[str, Any], context: RunContext) -> RunResult:
    """Forty files, reported one by one (faster than the runner passes them on), then one more stage."""
    for done in range(41):
        context.progress("analysing files", done / 40, done, 40)
        time.sleep(0.01)
    context.progress("writing the report", 1.0)
    return RunResult(summary="counted", files_analyzed=40)


AGENTS = [
    AgentSpec("many", "Many", "many findings", path_input_schema(), _many),
    AgentSpec("counting", "Counting", "reports progress", {"type": "object", "properties": {}}, _counting),
    AgentSpec("slow", "Slow", "never ends by itself", {"type": "object", "properties": {}}, _slow_tracked),
]


class FakeContext:
    def __init__(self, identity: Identity) -> None:
        self._identity = identity

    def invocation_metadata(self) -> list[tuple[str, str]]:
        return [("x-mcpmesh-principal", self._identity.principal), ("x-mcpmesh-role", self._identity.role)]


@pytest.fixture
async def runner(tmp_path: Path) -> AsyncIterator[AgentRunner]:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    database = SqliteDatabase(tmp_path / "agents.db", SCHEMA)
    yield AgentRunner(AGENTS, SqliteRunStore(database), roots=[tmp_path], limits=Limits(), timeout=2.0, max_concurrent=2)
    database.close()


async def test_same_key_and_request_returns_the_first_run(runner: AgentRunner, tmp_path: Path) -> None:
    first = await runner.run("many", {"path": str(tmp_path / "a")}, RunOptions(idempotency_key="k"), ADMIN)
    again = await runner.run("many", {"path": str(tmp_path / "a")}, RunOptions(idempotency_key="k"), ADMIN)
    assert again.id == first.id
    assert len(again.result.findings) == len(first.result.findings) == 6001


async def test_same_key_with_another_request_is_refused(runner: AgentRunner, tmp_path: Path) -> None:
    await runner.run("many", {"path": str(tmp_path / "a")}, RunOptions(idempotency_key="k"), ADMIN)
    with pytest.raises(FailedPrecondition) as refused:
        await runner.run("many", {"path": str(tmp_path / "b")}, RunOptions(idempotency_key="k"), ADMIN)
    assert refused.value.reason == "IDEMPOTENCY_KEY_REUSED"
    with pytest.raises(FailedPrecondition):
        await runner.run("many", {"path": str(tmp_path / "a")}, RunOptions(idempotency_key="k", disable_llm=True), ADMIN)


async def test_keys_are_scoped_by_caller(runner: AgentRunner, tmp_path: Path) -> None:
    admins = await runner.run("many", {"path": str(tmp_path / "a")}, RunOptions(idempotency_key="k"), ADMIN)
    # Another caller with the same key neither gets the admin's result nor is refused: it gets its own run.
    operators = await runner.run("many", {"path": str(tmp_path / "b")}, RunOptions(idempotency_key="k"), OPERATOR)
    assert operators.id != admins.id
    assert (operators.result.summary, operators.caller) == ("b", "key:operator")


async def test_run_message_is_bounded_and_every_finding_can_be_paged(runner: AgentRunner, tmp_path: Path) -> None:
    servicer = AgentServicer(runner)
    request = agent_service_pb2.RunAgentRequest(name="many", input=to_struct({"path": str(tmp_path / "a")}))
    run = (await servicer.RunAgent(request, FakeContext(ADMIN))).run  # type: ignore[arg-type]
    assert run.total_findings == 6001 and run.findings_truncated
    assert dict(run.finding_counts) == {"critical": 1, "high": 0, "medium": 0, "low": 6000, "info": 0}
    per_file: dict[str, int] = {}
    for finding in run.findings:
        per_file[finding.file] = per_file.get(finding.file, 0) + 1
    assert max(per_file.values()) <= 100 and len(run.findings) <= 2000
    assert any(f.rule_id == "CRIT" for f in run.findings)  # the most severe ones are kept
    assert run.ByteSize() < 1_000_000
    paged: list[str] = []
    token = ""
    while True:
        page = await servicer.ListAgentRunFindings(  # type: ignore[arg-type]
            agent_service_pb2.ListAgentRunFindingsRequest(id=run.id, page_size=1000, page_token=token), FakeContext(ADMIN)
        )
        assert page.total_size == 6001
        paged += [f.message for f in page.findings]
        token = page.next_page_token
        if not token:
            break
    assert len(paged) == 6001 and len(set(paged)) == 6001
    again = (await servicer.GetAgentRun(agent_service_pb2.GetAgentRunRequest(id=run.id), FakeContext(ADMIN))).run  # type: ignore[arg-type]
    assert list(again.findings) == list(run.findings)


async def test_a_run_past_its_deadline_fails_and_stops_its_worker(runner: AgentRunner) -> None:
    SLOW_STOPPED.clear()
    with pytest.raises(DomainError) as failed:
        await runner.run("slow", {}, RunOptions(), ADMIN)
    assert (failed.value.code, failed.value.reason) == ("DEADLINE_EXCEEDED", "AGENT_RUN_TIMED_OUT")
    assert await asyncio.to_thread(SLOW_STOPPED.wait, 5)
    assert runner.active == 0


async def test_a_cancelled_call_stops_its_worker(runner: AgentRunner) -> None:
    SLOW_STOPPED.clear()
    task = asyncio.create_task(runner.run("slow", {}, RunOptions(), ADMIN))
    await asyncio.sleep(0.1)
    assert runner.active == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.to_thread(SLOW_STOPPED.wait, 5)


async def test_bad_input_names_the_field(runner: AgentRunner, tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument) as bad:
        await runner.run("many", {"path": str(tmp_path.parent)}, RunOptions(), ADMIN)
    assert bad.value.violations[0].field == "input.path"
    with pytest.raises(InvalidArgument) as bad:
        await runner.run("many", {"path": 3}, RunOptions(), ADMIN)
    assert bad.value.violations[0].field == "input.path"
    with pytest.raises(InvalidArgument) as bad:
        await runner.run("many", {"path": "x"}, RunOptions(max_files=-1), ADMIN)
    assert bad.value.violations[0].field == "options.max_files"


async def test_runs_beyond_the_concurrency_limit_wait_and_count_toward_the_metric(runner: AgentRunner) -> None:
    tasks = [asyncio.create_task(runner.run("slow", {}, RunOptions(), ADMIN)) for _ in range(3)]
    await asyncio.sleep(0.2)
    assert runner.active == 2  # max_concurrent=2: the third run waits for a slot (ActiveAgentExecutions)
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, DomainError) and r.reason == "AGENT_RUN_TIMED_OUT" for r in results)
    assert runner.active == 0


async def test_the_whole_schema_is_checked_and_the_field_named(tmp_path: Path) -> None:
    from services.agents import code_analyzer

    database = SqliteDatabase(tmp_path / "agents.db", SCHEMA)
    runner = AgentRunner([code_analyzer.SPEC], SqliteRunStore(database), roots=[tmp_path], limits=Limits())
    try:
        with pytest.raises(InvalidArgument) as bad:
            await runner.run("code-analyzer", {"path": str(tmp_path), "formats": ["sarif", 3]}, RunOptions(), ADMIN)
        assert bad.value.violations[0].field == "input.formats[1]"
        with pytest.raises(InvalidArgument) as bad:
            await runner.run("code-analyzer", {"path": "x" * 5000}, RunOptions(), ADMIN)
        assert bad.value.violations[0].field == "input.path"
    finally:
        database.close()


async def test_stream_agent_run_sends_throttled_progress_then_the_run(runner: AgentRunner) -> None:
    servicer = AgentServicer(runner)
    request = agent_service_pb2.StreamAgentRunRequest(
        name="counting", options=agent_service_pb2.RunOptions(idempotency_key="stream-1"))
    messages = [m async for m in servicer.StreamAgentRun(request, FakeContext(ADMIN))]  # type: ignore[arg-type]
    *reports, last = messages
    assert last.WhichOneof("event") == "run" and last.run.summary == "counted"
    assert all(m.WhichOneof("event") == "progress" for m in reports)
    files = [(m.progress.items_done, m.progress.items_total) for m in reports if m.progress.stage == "analysing files"]
    assert files[0] == (0, 40) and files[-1] == (40, 40)  # the first and the last of a stage always come
    assert len(files) < 41  # about 0.4 s of reports every 10 ms: throttled to a few a second
    assert [n for n, _ in files] == sorted(n for n, _ in files)  # in order
    assert reports[-1].progress.stage == "writing the report" and reports[-1].progress.fraction == 1.0
    # A retry with the same key replays the run: the run alone, the same one.
    again = [m async for m in servicer.StreamAgentRun(request, FakeContext(ADMIN))]  # type: ignore[arg-type]
    assert [m.WhichOneof("event") for m in again] == ["run"] and again[0].run.id == last.run.id


async def test_stream_agent_run_ends_with_the_runs_error(runner: AgentRunner) -> None:
    servicer = AgentServicer(runner)
    request = agent_service_pb2.StreamAgentRunRequest(name="slow")
    with pytest.raises(DomainError) as failed:
        [m async for m in servicer.StreamAgentRun(request, FakeContext(ADMIN))]  # type: ignore[arg-type]
    assert failed.value.reason == "AGENT_RUN_TIMED_OUT"
