"""Knowledge Builder: metrics, entities, exports and graph queries on the fixture project."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path

import networkx as nx
import pytest

from services.agents.knowledge.builder import build_graph
from services.agents.knowledge.entities import Mention, mentions
from services.agents.knowledge.export import export
from services.agents.knowledge.graph import GraphInfo
from services.agents.knowledge.metrics import measure
from services.agents.knowledge.queries import GraphQueries
from services.agents.knowledge.store_sqlite import SCHEMA, SqliteGraphStore
from services.runtime.errors import FailedPrecondition, InvalidArgument, NotFound
from services.runtime.state import SqliteDatabase

SHOP = Path(__file__).resolve().parents[1] / "fixtures" / "knowledge" / "shop"


def test_metrics_of_the_fixture() -> None:
    build = build_graph(SHOP)
    nodes, figures = measure(build.nodes, build.edges)
    assert figures["import_cycles"] == [["module/shop.repo", "module/shop.service"]]
    assert figures["central_modules"][0] == {"id": "module/shop.service", "betweenness": 0.25, "fan_in": 2, "fan_out": 2}
    assert [m["id"] for m in figures["central_modules"]] == [
        "module/shop.service", "module/shop.models", "module/shop.repo", "module/shop", "module/test_service",
    ]
    assert figures["most_called"][0] == {"id": "function/shop.service.place_order", "fan_in": 2}
    assert figures["nodes_by_kind"] == {"repository": 1, "file": 1, "module": 5, "class": 3, "function": 3, "method": 3,
                                        "test": 2, "package": 3, "entity": 4}
    assert figures["edges_by_kind"] == {"contains": 6, "defines": 11, "imports": 8, "calls": 7, "inherits": 2, "mentions": 8}
    by_id = {n.id: n for n in nodes}
    assert (by_id["module/shop.models"].attributes["fan_in"], by_id["module/shop.models"].attributes["fan_out"]) == (2, 0)
    assert (by_id["function/shop.service.place_order"].attributes["fan_in"],
            by_id["function/shop.service.place_order"].attributes["fan_out"]) == (2, 2)
    assert "fan_in" not in by_id["package/json"].attributes


def test_entities_from_markdown_skip_code_blocks_and_link_targets() -> None:
    text = (
        "# Billing engine\n\nThe `InvoiceWriter` writes invoices via [the docs](http://x.example/a_b).\n"
        "```python\nhidden_name = 1\n```\nThe billing engine uses tax_tables and billing.rules.apply.\n"
    )
    assert mentions(text, markdown=True) == [
        Mention("InvoiceWriter", "identifier", "InvoiceWriter", 1),
        Mention("billing.rules.apply", "identifier", "billing.rules.apply", 1),
        Mention("tax_tables", "identifier", "tax_tables", 1),
        Mention("billing engine", "phrase", "billing engine", 2),
    ]
    # One mention of a phrase in prose is not enough; a heading is.
    assert [m.key for m in mentions("Reads the order book once.")] == []


def test_exports_are_byte_stable_and_valid() -> None:
    build = build_graph(SHOP)
    info = GraphInfo("shop-x", str(SHOP))
    first, media = export(info, build.nodes, build.edges, "json")
    assert media == "application/json"
    assert first == export(info, build_graph(SHOP).nodes, build_graph(SHOP).edges, "json")[0]
    body = json.loads(first)
    assert len(body["nodes"]) == 25 and len(body["edges"]) == 42
    graphml, media = export(info, build.nodes, build.edges, "graphml")
    assert media == "application/graphml+xml"
    ET.fromstring(graphml)  # well-formed XML
    parsed = nx.parse_graphml(graphml, force_multigraph=True)
    assert parsed.number_of_nodes() == 25 and parsed.number_of_edges() == 42
    assert parsed.nodes["method/shop.models.Order.total"]["span"] == "shop/models.py:27:4-33:53"
    with pytest.raises(InvalidArgument) as bad:
        export(info, build.nodes, build.edges, "dot")
    assert bad.value.violations[0].field == "format"


@pytest.fixture
async def queries(tmp_path: Path) -> AsyncIterator[GraphQueries]:
    database = SqliteDatabase(tmp_path / "graphs.db", SCHEMA)
    store = SqliteGraphStore(database)
    build = build_graph(SHOP)
    await store.save(GraphInfo("shop", str(SHOP)), build.nodes, build.edges, build.files)
    yield GraphQueries(store)
    database.close()


async def test_path_between_two_nodes(queries: GraphQueries) -> None:
    path = await queries.path("shop", "test/test_service.test_place_order", "class/shop.models.Entity")
    assert [n.id for n in path.nodes] == [
        "test/test_service.test_place_order", "function/shop.service.place_order", "class/shop.models.Order",
        "class/shop.models.Entity",
    ]
    assert [e.key for e in path.edges] == [
        ("test/test_service.test_place_order", "calls", "function/shop.service.place_order"),
        ("function/shop.service.place_order", "calls", "class/shop.models.Order"),
        ("class/shop.models.Order", "inherits", "class/shop.models.Entity"),
    ]
    same = await queries.path("shop", "module/shop", "module/shop")
    assert [n.id for n in same.nodes] == ["module/shop"] and same.edges == []


async def test_query_errors_name_the_field(queries: GraphQueries) -> None:
    with pytest.raises(InvalidArgument) as missing:
        await queries.path("shop", "", "module/shop")
    assert missing.value.violations[0].field == "source"
    with pytest.raises(InvalidArgument) as kind:
        await queries.neighbors("shop", "module/shop", "out", ["likes"], 0, 10)
    assert kind.value.violations[0].field == "edge_kinds"
    with pytest.raises(InvalidArgument) as direction:
        await queries.neighbors("shop", "module/shop", "up", [], 0, 10)
    assert direction.value.violations[0].field == "direction"
    with pytest.raises(NotFound):
        await queries.path("shop", "module/shop", "module/nope")


async def test_search_and_neighbors_over_the_fixture(queries: GraphQueries) -> None:
    found, total = await queries.search("shop", "order", [], 0, 5)
    assert found[0].id == "class/shop.models.Order"
    functions, _ = await queries.search("shop", "place", ["function", "test"], 0, 10)
    assert [n.id for n in functions] == ["function/shop.service.place_order", "test/test_service.test_place_order"]
    around, total = await queries.neighbors("shop", "class/shop.models.Entity", "in", [], 0, 10)
    assert total == 3
    assert [(n.edge.kind, n.node.id) for n in around] == [
        ("defines", "module/shop.models"), ("inherits", "class/shop.models.Customer"), ("inherits", "class/shop.models.Order"),
    ]
    content, _ = await queries.export("shop", "")
    assert json.loads(content)["graph"]["name"] == "shop"


async def test_an_export_too_large_for_one_response_is_refused(queries: GraphQueries, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("services.agents.knowledge.queries.MAX_EXPORT_BYTES", 1000)
    with pytest.raises(FailedPrecondition) as refused:
        await queries.export("shop", "graphml")
    assert refused.value.reason == "GRAPH_EXPORT_TOO_LARGE"
