"""Each workflow type end to end through the edge on a fixture project with known content."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@pytest.fixture(scope="module")
def shop(sample_project: Path) -> Path:
    """The knowledge fixture (a small Python package with a README and a schema) plus the database fixture."""
    root = sample_project.parent / "shop-e2e"
    if not root.exists():
        shutil.copytree(FIXTURES / "knowledge" / "shop", root)
        shutil.copy(FIXTURES / "database" / "shop_queries.sql", root / "queries.sql")
    return root


def run(rest: httpx.Client, type_name: str, parameters: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    created = rest.post("/v1/workflows", json={"type": type_name, "parameters": parameters})
    assert created.status_code == 200, created.text
    workflow_id = created.json()["workflow"]["id"]
    with rest.stream("GET", f"/v1/workflows/{workflow_id}:watch") as response:
        events = [json.loads(line)["event"] for line in response.iter_lines() if line.strip()]
    final = rest.get(f"/v1/workflows/{workflow_id}").json()["workflow"]
    assert final["state"] == "WORKFLOW_STATE_SUCCEEDED", final.get("error")
    assert [int(e["sequence"]) for e in events] == list(range(1, len(events) + 1))
    assert events[-1]["type"] == "WORKFLOW_EVENT_TYPE_SUCCEEDED"
    return final, events


def where(finding: dict[str, Any]) -> tuple[str, str, int]:
    """(rule, file or named object, line) of a finding as the result holds it."""
    return finding["rule_id"], finding.get("file") or finding["object"]["name"], int(finding.get("line", 0))


DATABASE_FINDINGS = {
    ("float-for-money", "orders.amount", 0),
    ("fk-without-index", "orders.customer_id", 0),
    ("select-star", "queries.sql", 2),
    ("non-sargable-predicate", "queries.sql", 3),
    ("non-sargable-predicate", "queries.sql", 4),
    ("leading-wildcard-like", "queries.sql", 5),
    ("update-without-where", "queries.sql", 7),
    ("delete-without-where", "queries.sql", 8),
    ("non-sargable-predicate", "queries.sql", 16),
}
NODES_BY_KIND = {"function": 3, "class": 3, "entity": 4, "method": 3, "module": 5, "test": 2, "repository": 1,
                 "file": 1, "package": 3, "table": 2}
DOCUMENTS = ["docs/api/shop.md", "docs/api/shop.models.md", "docs/api/shop.repo.md", "docs/api/shop.service.md",
             "docs/architecture.md", "docs/coverage.md", "docs/index.md", "docs/schema.md", "mkdocs.yml"]
CODE_FINDINGS = {("B101", "tests/test_service.py", 7)}  # bandit: assert in a test
UNDOCUMENTED = {"shop.models.Entity.key", "shop.models.Order.describe", "shop.models.Customer", "shop.service.audit"}


def check_knowledge(rest: httpx.Client, knowledge: dict[str, Any]) -> None:
    metrics = knowledge["metrics"]
    assert metrics["nodes_by_kind"] == NODES_BY_KIND
    assert (metrics["nodes"], metrics["edges"]) == (27, 45)
    assert metrics["import_cycles"] == [["module/shop.repo", "module/shop.service"]]
    assert {where(f) for f in knowledge["findings"]} == {("import-cycle", "module/shop.repo", 0)}
    # The graph itself stays in the graph store, by name: the workflow holds the reference.
    node = rest.get(f"/v1/graphs/{metrics['graph']}/nodes/function/shop.service.place_order")
    assert node.status_code == 200, node.text


def check_documents(rest: httpx.Client, documentation: dict[str, Any]) -> None:
    metrics = documentation["metrics"]
    prefix = metrics["artifact_prefix"]
    assert [name.removeprefix(prefix) for name in metrics["files"]] == DOCUMENTS
    assert (metrics["modules"], metrics["public_objects"], metrics["documented"]) == (4, 13, 9)
    assert {f["message"].split("`")[1] for f in documentation["findings"]} == UNDOCUMENTED
    # The documents are artifacts, listed and downloadable; the workflow holds their names.
    listed = rest.get("/v1/artifacts", params={"prefix": prefix, "pageSize": 100}).json()
    assert sorted(a["name"] for a in listed["artifacts"]) == sorted([*metrics["files"], f"{prefix}manifest.json"])
    index = rest.get(f"/v1/artifacts/{prefix}docs/index.md")
    assert index.status_code == 200, index.text


def test_database_analysis(rest: httpx.Client, shop: Path) -> None:
    final, _ = run(rest, "database_analysis", {"path": str(shop), "dialect": "sqlite"})
    database = final["result"]["database"]
    assert {where(f) for f in database["findings"]} == DATABASE_FINDINGS
    assert database["finding_counts"] == {"critical": 0, "high": 3, "medium": 5, "low": 1, "info": 0}
    assert (database["metrics"]["tables"], database["metrics"]["foreign_keys"]) == (2, 1)


def test_knowledge_build(rest: httpx.Client, shop: Path) -> None:
    final, _ = run(rest, "knowledge_build", {"path": str(shop), "dialect": "sqlite"})
    check_knowledge(rest, final["result"]["knowledge"])


def test_documentation_builds_the_graph_then_the_documents(rest: httpx.Client, shop: Path) -> None:
    final, events = run(rest, "documentation", {"path": str(shop), "dialect": "sqlite"})
    steps = [(e["type"].removeprefix("WORKFLOW_EVENT_TYPE_"), e["step"]) for e in events if e["step"]]
    # The agents' progress reports come between their step's start and end.
    assert [s for s in steps if s[0] != "STEP_PROGRESS"] == [
        ("STEP_STARTED", "build_graph"), ("STEP_SUCCEEDED", "build_graph"),
        ("STEP_STARTED", "write_documents"), ("STEP_SUCCEEDED", "write_documents")]
    for index, (kind, step) in enumerate(steps):
        if kind == "STEP_PROGRESS":
            assert ("STEP_STARTED", step) in steps[:index] and ("STEP_SUCCEEDED", step) in steps[index:]
    check_knowledge(rest, final["result"]["knowledge"])
    check_documents(rest, final["result"]["documentation"])


def test_repository_review_merges_every_agent_into_one_report(rest: httpx.Client, shop: Path) -> None:
    final, events = run(rest, "repository_review", {"path": str(shop), "dialect": "sqlite"})
    result = final["result"]
    first = {"analyze_code", "inventory_files", "analyze_database", "build_graph"}
    kinds = [(e["type"].removeprefix("WORKFLOW_EVENT_TYPE_"), e["step"]) for e in events if e["step"]]
    first_end = next(i for i, (kind, _) in enumerate(kinds) if kind == "STEP_SUCCEEDED")
    assert {step for _, step in kinds[:first_end]} == first  # the independent steps all started before any ended
    assert kinds[-2:] == [("STEP_STARTED", "report"), ("STEP_SUCCEEDED", "report")]
    assert {where(f) for f in result["database"]["findings"]} == DATABASE_FINDINGS
    check_knowledge(rest, result["knowledge"])
    check_documents(rest, result["documentation"])
    code = {where(f) for f in result["code"]["findings"]}
    assert code == CODE_FINDINGS
    sections = [result[name] for name in ("code", "database", "knowledge", "documentation")]
    assert result["total_findings"] == sum(s["total_findings"] for s in sections) == len(CODE_FINDINGS) + 9 + 1 + 4
    assert result["finding_counts"] == {
        severity: sum(s["finding_counts"][severity] for s in sections) for severity in result["finding_counts"]}
    assert (result["inventory"]["total_files"], result["inventory"]["total_lines"]) == (8, 123)
    assert result["summary"].startswith(f"8 files, 123 lines; {result['total_findings']} findings")
