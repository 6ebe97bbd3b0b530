"""The Database Analyzer through the edge: POST /v1/agents/database-analyzer:run on fixture DDL and queries."""

from __future__ import annotations

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
