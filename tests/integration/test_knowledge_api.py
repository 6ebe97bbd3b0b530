"""Knowledge Builder and Documentation Generator through the edge: runs, graph queries, exports and artifacts over REST."""

from __future__ import annotations

import base64
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

SHOP = Path(__file__).parent.parent / "fixtures" / "knowledge" / "shop"


def _reason(body: dict) -> str:
    return next(d["reason"] for d in body["details"] if d["@type"].endswith("ErrorInfo"))


@pytest.fixture(scope="module")
def shop(sample_project: Path) -> Path:
    folder = sample_project.parent / "kb-shop"
    if not folder.exists():
        shutil.copytree(SHOP, folder)
    return folder


def test_graph_built_and_queried_over_rest(rest: httpx.Client, shop: Path) -> None:
    response = rest.post("/v1/agents/knowledge-builder:run",
                         json={"input": {"path": str(shop), "schema": "schema.sql", "dialect": "sqlite"}})
    assert response.status_code == 200, response.text
    run = response.json()["run"]
    graph = run["metrics"]["graph"]
    assert run["metrics"]["nodes"] == 27
    assert run["metrics"]["import_cycles"] == [["module/shop.repo", "module/shop.service"]]
    assert [(f["ruleId"], f["object"]["name"]) for f in run["findings"]] == [("import-cycle", "module/shop.repo")]

    graphs = rest.get("/v1/graphs").json()["graphs"]
    assert graph in [g["name"] for g in graphs]

    node = rest.get(f"/v1/graphs/{graph}/nodes/method/shop.models.Order.total")
    assert node.status_code == 200, node.text
    assert node.json()["node"]["span"] == {"file": "shop/models.py", "startLine": 27, "startColumn": 4, "endLine": 33, "endColumn": 53}

    found = rest.get(f"/v1/graphs/{graph}/nodes", params={"query": "place order", "kinds": "function"}).json()
    assert [n["id"] for n in found["nodes"]] == ["function/shop.service.place_order"] and found["totalSize"] == 1

    around = rest.get(f"/v1/graphs/{graph}/neighbors", params={"node": "class/shop.models.Entity", "direction": "in"}).json()
    assert [(n["edge"]["kind"], n["node"]["id"]) for n in around["neighbors"]] == [
        ("defines", "module/shop.models"), ("inherits", "class/shop.models.Customer"), ("inherits", "class/shop.models.Order"),
    ]

    path = rest.get(f"/v1/graphs/{graph}:findPath",
                    params={"source": "test/test_service.test_place_order", "target": "table/customers"}).json()
    # Code and tables meet only at the repository that holds both.
    assert [n["id"] for n in path["nodes"]] == ["test/test_service.test_place_order", "module/test_service", "repository", "table/customers"]
    missing = rest.get(f"/v1/graphs/{graph}:findPath", params={"source": "module/shop", "target": "module/nope"})
    assert missing.status_code == 404
    assert _reason(missing.json()) == "GRAPH_NODE_NOT_FOUND"

    path = rest.get(f"/v1/graphs/{graph}:findPath",
                    params={"source": "test/test_service.test_place_order", "target": "class/shop.models.Entity"}).json()
    assert [n["id"] for n in path["nodes"]] == [
        "test/test_service.test_place_order", "function/shop.service.place_order", "class/shop.models.Order", "class/shop.models.Entity",
    ]

    exported = rest.get(f"/v1/graphs/{graph}:export", params={"format": "graphml"}).json()
    assert exported["mediaType"] == "application/graphml+xml"
    assert len(ET.fromstring(exported["content"]).findall(".//{http://graphml.graphdrawing.org/xmlns}node")) == 27


def test_graph_queries_refuse_bad_input(rest: httpx.Client, shop: Path) -> None:
    missing = rest.get("/v1/graphs/nope-00000000/nodes/module/x")
    assert missing.status_code == 404 and _reason(missing.json()) == "GRAPH_NOT_FOUND"
    bad = rest.get("/v1/graphs/nope/nodes", params={"query": "***"})
    assert bad.status_code == 400 and "query" in bad.json()["message"]
    graph = rest.post("/v1/agents/knowledge-builder:run", json={"input": {"path": str(shop)}}).json()["run"]["metrics"]["graph"]
    bad = rest.get(f"/v1/graphs/{graph}/neighbors", params={"node": "module/shop", "direction": "up"})
    assert bad.status_code == 400 and "direction" in bad.json()["message"]
    bad = rest.get(f"/v1/graphs/{graph}:export", params={"format": "dot"})
    assert bad.status_code == 400 and "format" in bad.json()["message"]


def test_docs_written_listed_and_downloaded(rest: httpx.Client, shop: Path) -> None:
    response = rest.post("/v1/agents/documentation-generator:run", json={"input": {"path": str(shop), "project": "Shop"}})
    assert response.status_code == 200, response.text
    prefix = response.json()["run"]["metrics"]["artifact_prefix"]
    listed = rest.get("/v1/artifacts", params={"prefix": prefix, "pageSize": 5}).json()
    names = [a["name"] for a in listed["artifacts"]]
    assert names == [prefix + n for n in ("docs/api/shop.md", "docs/api/shop.models.md", "docs/api/shop.repo.md",
                                          "docs/api/shop.service.md", "docs/architecture.md")]
    rest_of = rest.get("/v1/artifacts", params={"prefix": prefix, "pageToken": listed["nextPageToken"]}).json()
    assert [a["name"] for a in rest_of["artifacts"]] == [prefix + n for n in ("docs/coverage.md", "docs/index.md", "docs/schema.md", "manifest.json", "mkdocs.yml")]
    page = rest.get("/v1/artifacts/" + quote(prefix + "docs/api/shop.service.md"))
    assert page.status_code == 200, page.text
    body = page.json()
    assert body["artifact"]["mediaType"] == "text/markdown"
    assert base64.b64decode(body["content"]).decode().startswith("# `shop.service`\n\nPlacing orders.")
    missing = rest.get("/v1/artifacts/" + prefix + "docs/none.md")
    assert missing.status_code == 404 and _reason(missing.json()) == "ARTIFACT_NOT_FOUND"
    assert rest.get("/v1/artifacts", params={"pageToken": "!!"}).status_code == 400


def test_documentation_workflow_builds_the_graph_then_the_docs(rest: httpx.Client, shop: Path) -> None:
    created = rest.post("/v1/workflows", json={"type": "documentation", "parameters": {"path": str(shop)}})
    assert created.status_code == 200, created.text
    workflow_id = created.json()["workflow"]["id"]
    with rest.stream("GET", f"/v1/workflows/{workflow_id}:watch") as response:
        assert response.status_code == 200
        for _ in response.iter_lines():
            pass  # the watch ends after the terminal event
    final = rest.get(f"/v1/workflows/{workflow_id}").json()["workflow"]
    assert final["state"] == "WORKFLOW_STATE_SUCCEEDED", final
    result = final["result"]
    assert result["knowledge"]["agent"] == "knowledge-builder"
    documentation = result["documentation"]
    assert documentation["agent"] == "documentation-generator"
    prefix = documentation["metrics"]["artifact_prefix"]
    assert documentation["metrics"]["files_reused"] == 5  # what the graph step had just read
    names = [a["name"] for a in rest.get("/v1/artifacts", params={"prefix": prefix, "pageSize": 100}).json()["artifacts"]]
    assert prefix + "docs/schema.md" in names and prefix + "docs/architecture.md" in names
