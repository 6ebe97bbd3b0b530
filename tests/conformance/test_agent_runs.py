"""Conformance suite of the agent run store port, run against every adapter."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from services.agents.base import Artifact, FileSpan, Finding, NamedObject, RunResult
from services.agents.runs import AgentRun, RunStore
from services.agents.runs_dynamodb import DynamoDBRunStore, create_tables
from services.agents.runs_sqlite import SCHEMA, SqliteRunStore
from services.runtime.errors import NotFound
from services.runtime.state import SqliteDatabase
from tests.dynamodb import tables_for


@pytest.fixture(params=["dynamodb", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RunStore]:
    if request.param == "sqlite":
        database = SqliteDatabase(tmp_path / "agents.db", SCHEMA)
        yield SqliteRunStore(database)
        database.close()
    else:
        request.getfixturevalue("dynamodb_endpoint")  # DynamoDB Local, started once per session
        client, prefix = tables_for(tmp_path, create_tables)  # one set of tables per test
        dynamo = DynamoDBRunStore(client, prefix)
        yield dynamo
        dynamo.close()


def _findings(count: int) -> list[Finding]:
    return [
        Finding(f"B{i:03}", "bandit", "high", f"problem {i}", FileSpan(f"f{i}.py", i + 1, 4, i + 2, 9), category="security",
                confidence="medium", cwe=78, fix_hint="do not", snippet="x()", fingerprint=f"fp{i}")
        for i in range(count)
    ]


def _run(run_id: str, *, caller: str = "key:a", key: str = "", findings: int = 0) -> AgentRun:
    return AgentRun(
        id=run_id,
        agent="code-analyzer",
        input={"path": "/w/p"},
        state="succeeded",
        created=dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
        caller=caller,
        idempotency_key=key,
        request_hash="h1",
        result=RunResult(
            findings=_findings(findings),
            artifacts=[Artifact("report.md", "text/markdown", "# hi\n")],
            metrics={"functions": 3},
            summary="done",
            files_analyzed=2,
            lines_analyzed=40,
            llm_status="not_configured",
        ),
        ended=dt.datetime(2026, 1, 2, 3, 4, 6, tzinfo=dt.UTC),
        duration_ms=1000,
    )


async def test_a_created_run_reads_back_without_findings_and_its_findings_page(store: RunStore) -> None:
    run = _run("r1", findings=5)
    assert await store.create(run) is run
    got = await store.get("r1")
    assert got.result.findings == []
    assert replace(got, result=replace(got.result, findings=run.result.findings)) == run
    page, total = await store.findings("r1", 0, 2)
    assert total == 5 and page == run.result.findings[:2]
    page, _ = await store.findings("r1", 4, 10)
    assert page == run.result.findings[4:]


async def test_a_named_object_location_round_trips(store: RunStore) -> None:
    finding = Finding("DB001", "sqlglot", "medium", "no primary key", NamedObject("table", "public.orders"))
    await store.create(replace(_run("r2"), result=RunResult(findings=[finding])))
    page, total = await store.findings("r2", 0, 10)
    assert (page, total) == ([finding], 1)
    assert (page[0].file, page[0].line) == ("", 0)


async def test_missing_runs_are_not_found(store: RunStore) -> None:
    with pytest.raises(NotFound):
        await store.get("nope")
    with pytest.raises(NotFound):
        await store.findings("nope", 0, 10)
    with pytest.raises(NotFound):
        await store.save(_run("nope"))


async def test_keys_are_scoped_by_caller_and_a_taken_key_returns_the_first_run(store: RunStore) -> None:
    first = await store.create(_run("r1", caller="key:a", key="k"))
    again = await store.create(_run("r2", caller="key:a", key="k", findings=3))
    assert again.id == first.id == "r1"
    other = await store.create(_run("r3", caller="key:b", key="k"))
    assert other.id == "r3"
    found = await store.find_by_key("key:a", "k")
    assert found is not None and found.id == "r1"
    assert (await store.find_by_key("key:c", "k")) is None
    assert (await store.findings("r1", 0, 10))[1] == 0  # the loser's findings were not stored
    with pytest.raises(NotFound):
        await store.get("r2")


async def test_runs_without_a_key_never_collide(store: RunStore) -> None:
    await store.create(_run("r1"))
    await store.create(_run("r2"))
    assert {(await store.get(i)).id for i in ("r1", "r2")} == {"r1", "r2"}


async def test_concurrent_creates_with_one_key_have_one_winner(store: RunStore) -> None:
    results = await asyncio.gather(*(store.create(_run(f"r{i}", key="same")) for i in range(8)))
    assert len({r.id for r in results}) == 1


async def test_save_replaces_state_and_findings(store: RunStore) -> None:
    run = _run("r1", findings=3)
    await store.create(run)
    done = replace(run, state="failed", error="boom", result=replace(run.result, findings=_findings(1)))
    await store.save(done)
    got = await store.get("r1")
    assert (got.state, got.error) == ("failed", "boom")
    assert (await store.findings("r1", 0, 10))[1] == 1


async def test_ping_answers(store: RunStore) -> None:
    await store.ping()


async def test_many_findings_and_a_large_report_round_trip(store: RunStore) -> None:
    run = _run("r1", findings=250)
    report = Artifact("report.md", "text/markdown", "".join(f"{i:x}{(i * 7919) % 104729:x}" for i in range(150_000)))
    run = replace(run, result=replace(run.result, artifacts=[report]))
    await store.create(run)
    assert (await store.get("r1")).result.artifacts == [report]
    for offset, limit in ((0, 250), (99, 3), (100, 100), (199, 60), (249, 5), (250, 5)):
        page, total = await store.findings("r1", offset, limit)
        assert total == 250 and page == run.result.findings[offset:offset + limit]
    await store.save(replace(run, result=replace(run.result, artifacts=[], findings=_findings(120))))
    assert (await store.get("r1")).result.artifacts == []
    assert await store.findings("r1", 90, 40) == (_findings(120)[90:], 120)
