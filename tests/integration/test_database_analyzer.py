"""The Database Analyzer through the edge: POST /v1/agents/database-analyzer:run on fixture DDL and queries."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx

FIXTURES = Path(__file__).parent.parent / "fixtures" / "database"


def test_database_analyzer_runs_over_rest(rest: httpx.Client, sample_project: Path) -> None:
    folder = sample_project.parent / "database"
    folder.mkdir(exist_ok=True)
    shutil.copy(FIXTURES / "shop_postgres.sql", folder / "shop.sql")
    shutil.copy(FIXTURES / "shop_queries.sql", folder / "queries.sql")
    response = rest.post("/v1/agents/database-analyzer:run",
                         json={"input": {"ddl": [str(folder / "shop.sql")], "queries": [str(folder / "queries.sql")]}})
    assert response.status_code == 200, response.text
    run = response.json()["run"]
    findings = run["findings"]
    objects = {(f["ruleId"], f["object"]["kind"], f["object"]["name"]) for f in findings if f.get("object")}
    assert ("fk-without-index", "column", "orders.customer_id") in objects
    assert ("duplicate-index", "index", "orders.orders_status_idx2") in objects
    assert ("missing-primary-key", "table", "order_items") in objects
    lines = {(f["ruleId"], f["file"], f["line"]) for f in findings if f.get("file")}
    assert ("update-without-where", "database/queries.sql", 7) in lines
    assert ("leading-wildcard-like", "database/queries.sql", 5) in lines
    assert {a["name"] for a in run["artifacts"]} >= {"report.md", "schema.mmd"}
    # The form the database_analysis workflow uses: one folder, searched for schema and queries.
    by_folder = rest.post("/v1/agents/database-analyzer:run", json={"input": {"path": str(folder)}})
    assert by_folder.status_code == 200, by_folder.text
    folder_lines = {(f["ruleId"], f["file"], f["line"]) for f in by_folder.json()["run"]["findings"] if f.get("file")}
    assert ("update-without-where", "queries.sql", 7) in folder_lines


def test_database_analyzer_refuses_outside_paths_with_400(rest: httpx.Client) -> None:
    response = rest.post("/v1/agents/database-analyzer:run", json={"input": {"ddl": ["/etc/passwd"]}})
    assert response.status_code == 400 and "input.ddl[0]" in response.json()["message"]
    response = rest.post("/v1/agents/database-analyzer:run", json={"input": {"connection": "prod"}})
    assert response.status_code == 400 and "input.connection" in response.json()["message"]


def test_database_analysis_workflow_runs_the_agent_on_a_folder(rest: httpx.Client, sample_project: Path) -> None:
    folder = sample_project.parent / "database_workflow"
    (folder / "queries").mkdir(parents=True, exist_ok=True)
    shutil.copy(FIXTURES / "shop_postgres.sql", folder / "shop.sql")
    shutil.copy(FIXTURES / "shop_queries.sql", folder / "queries" / "shop.sql")
    created = rest.post("/v1/workflows", json={"type": "database_analysis", "parameters": {"path": str(folder)}})
    assert created.status_code == 200, created.text
    workflow_id = created.json()["workflow"]["id"]
    with rest.stream("GET", f"/v1/workflows/{workflow_id}:watch") as response:
        events = [json.loads(line)["event"] for line in response.iter_lines() if line.strip()]
    assert events[-1]["type"] == "WORKFLOW_EVENT_TYPE_SUCCEEDED", events[-1]
    final = rest.get(f"/v1/workflows/{workflow_id}").json()["workflow"]
    assert final["state"] == "WORKFLOW_STATE_SUCCEEDED"
    database = final["result"]["database"]
    assert database["agent"] == "database-analyzer" and database["metrics"]["tables"] == 5
    assert database["finding_counts"] == {"critical": 0, "high": 4, "medium": 8, "low": 5, "info": 0}
    located = {(f["rule_id"], f.get("file", ""), f.get("line", 0), f.get("object", {}).get("name", "")) for f in database["findings"]}
    assert ("update-without-where", "queries/shop.sql", 7, "") in located
    assert ("missing-primary-key", "", 0, "order_items") in located
