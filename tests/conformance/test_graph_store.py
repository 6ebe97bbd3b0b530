"""Conformance suite of the graph store port, run against every adapter."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from services.agents.knowledge.graph import Edge, FileRecord, GraphInfo, Node, Span
from services.agents.knowledge.store import GraphStore, SaveCounts
from services.agents.knowledge.store_dynamodb import DynamoDBGraphStore, create_tables
from services.agents.knowledge.store_sqlite import SCHEMA, SqliteGraphStore
from services.runtime.errors import InvalidArgument, NotFound
from services.runtime.state import SqliteDatabase
from tests.dynamodb import tables_for


@pytest.fixture(params=["dynamodb", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[GraphStore]:
    if request.param == "sqlite":
        database = SqliteDatabase(tmp_path / "graphs.db", SCHEMA)
        yield SqliteGraphStore(database)
        database.close()
    else:
        request.getfixturevalue("dynamodb_endpoint")  # DynamoDB Local, started once per session
        client, prefix = tables_for(tmp_path, create_tables)  # one set of tables per test
        dynamo = DynamoDBGraphStore(client, prefix)
        yield dynamo
        dynamo.close()


INFO = GraphInfo("shop-1234abcd", "/w/shop", metrics={"import_cycles": [["module/a", "module/b"]]}, updated="2026-01-01T00:00:00+00:00")
NODES = [
    Node("function/shop.repo.save_all", "function", "save_all", "shop.repo.save_all", Span("shop/repo.py", 3, 0, 5, 10), {"fan_in": 1}),
    Node("module/shop.repo", "module", "repo", "shop.repo", Span("shop/repo.py", 1, 0, 5, 0), {"docstring": "Storage."}),
    Node("module/shop.service", "module", "service", "shop.service", Span("shop/service.py", 1, 0, 9, 0)),
    Node("class/shop.models.OrderRepository", "class", "OrderRepository", "shop.models.OrderRepository", Span("shop/models.py", 1, 0, 2, 8)),
    Node("package/json", "package", "json", "json", None, {"stdlib": True}),
]
EDGES = [
    Edge("module/shop.repo", "defines", "function/shop.repo.save_all", Span("shop/repo.py", 3, 0, 5, 10)),
    Edge("module/shop.service", "imports", "module/shop.repo", Span("shop/service.py", 2, 0, 2, 20)),
    Edge("module/shop.service", "imports", "package/json", Span("shop/service.py", 1, 0, 1, 11)),
    Edge("module/shop.service", "calls", "function/shop.repo.save_all", None, {"count": 2}),
]
FILES = [FileRecord("shop/repo.py", "aa", '{"x": 1}'), FileRecord("shop/service.py", "bb", "{}")]


async def test_save_then_read_back(store: GraphStore) -> None:
    counts = await store.save(INFO, NODES, EDGES, FILES)
    assert counts == SaveCounts(nodes_added=5, edges_added=4)
    info = await store.get_graph(INFO.name)
    assert (info.node_count, info.edge_count, info.metrics, info.root) == (5, 4, INFO.metrics, "/w/shop")
    assert await store.node(INFO.name, "function/shop.repo.save_all") == NODES[0]
    assert await store.nodes(INFO.name) == sorted(NODES, key=lambda n: n.id)
    assert await store.edges(INFO.name) == sorted(EDGES, key=lambda e: e.key)
    assert await store.files(INFO.name) == {f.path: f for f in FILES}
    assert await store.edge_keys(INFO.name) == sorted(e.key for e in EDGES)
    assert await store.edge(INFO.name, EDGES[3].key) == EDGES[3]
    with pytest.raises(NotFound):
        await store.edge(INFO.name, ("module/shop.repo", "calls", "module/shop.service"))


async def test_save_again_writes_only_what_changed(store: GraphStore) -> None:
    await store.save(INFO, NODES, EDGES, FILES)
    assert await store.save(INFO, NODES, EDGES, FILES) == SaveCounts()
    changed = [replace(NODES[0], attributes={"fan_in": 2}), *NODES[1:4], Node("package/os", "package", "os", "os", None)]
    edges = [*EDGES[:3], Edge("module/shop.service", "imports", "package/os")]
    counts = await store.save(INFO, changed, edges, FILES[:1])
    assert counts == SaveCounts(nodes_added=1, nodes_updated=1, nodes_removed=1, edges_added=1, edges_removed=1)
    assert (await store.node(INFO.name, "function/shop.repo.save_all")).attributes == {"fan_in": 2}
    with pytest.raises(NotFound):
        await store.node(INFO.name, "package/json")
    assert list(await store.files(INFO.name)) == ["shop/repo.py"]
    assert [n.id for n in (await store.search(INFO.name, "os", [], 0, 10))[0]] == ["package/os"]
    found, total = await store.search(INFO.name, "json", [], 0, 10)
    assert (found, total) == ([], 0)


async def test_missing_graph_and_node(store: GraphStore) -> None:
    with pytest.raises(NotFound) as missing_graph:
        await store.get_graph("nope")
    assert missing_graph.value.reason == "GRAPH_NOT_FOUND"
    await store.save(INFO, NODES, EDGES, FILES)
    with pytest.raises(NotFound) as missing_node:
        await store.node(INFO.name, "module/nope")
    assert missing_node.value.reason == "GRAPH_NODE_NOT_FOUND"
    with pytest.raises(NotFound):
        await store.neighbors(INFO.name, "module/nope", "both", [], 0, 10)
    with pytest.raises(NotFound):
        await store.search("nope", "repo", [], 0, 10)
    assert await store.files("nope") == {}


async def test_neighbors_by_direction_and_kind(store: GraphStore) -> None:
    await store.save(INFO, NODES, EDGES, FILES)
    out, total = await store.neighbors(INFO.name, "module/shop.service", "out", [], 0, 10)
    assert total == 3
    assert [(n.edge.kind, n.node.id) for n in out] == [
        ("calls", "function/shop.repo.save_all"), ("imports", "module/shop.repo"), ("imports", "package/json"),
    ]
    into, total = await store.neighbors(INFO.name, "function/shop.repo.save_all", "in", [], 0, 10)
    assert total == 2
    assert [(n.edge.kind, n.node.id) for n in into] == [("calls", "module/shop.service"), ("defines", "module/shop.repo")]
    both, total = await store.neighbors(INFO.name, "module/shop.repo", "both", ["imports"], 0, 10)
    assert total == 1 and both[0].node.id == "module/shop.service" and both[0].edge.source == "module/shop.service"
    page, total = await store.neighbors(INFO.name, "module/shop.service", "out", [], 1, 1)
    assert (total, [n.node.id for n in page]) == (3, ["module/shop.repo"])
    with pytest.raises(InvalidArgument):
        await store.neighbors(INFO.name, "module/shop.service", "sideways", [], 0, 10)


async def test_search_by_name_words_and_prefixes(store: GraphStore) -> None:
    await store.save(INFO, NODES, EDGES, FILES)
    found, total = await store.search(INFO.name, "repo", [], 0, 10)
    # The exact name first, then by relevance: the CamelCase and snake_case words are searchable too.
    assert found[0].id == "module/shop.repo"
    assert {n.id for n in found} == {"module/shop.repo", "function/shop.repo.save_all", "class/shop.models.OrderRepository"}
    assert total == 3
    classes, _ = await store.search(INFO.name, "repository", ["class"], 0, 10)
    assert [n.id for n in classes] == ["class/shop.models.OrderRepository"]
    words, _ = await store.search(INFO.name, "save all", [], 0, 10)
    assert [n.id for n in words] == ["function/shop.repo.save_all"]
    with pytest.raises(InvalidArgument) as bad:
        await store.search(INFO.name, "  ** ", [], 0, 10)
    assert bad.value.violations[0].field == "query"


async def test_graphs_listed_by_name_and_deleted(store: GraphStore) -> None:
    await store.save(INFO, NODES, EDGES, FILES)
    await store.save(replace(INFO, name="alpha-00000000"), NODES[:1], [], [])
    graphs, total = await store.list_graphs(0, 10)
    assert total == 2 and [g.name for g in graphs] == ["alpha-00000000", INFO.name]
    await store.delete("alpha-00000000")
    graphs, total = await store.list_graphs(0, 10)
    assert total == 1
    assert (await store.search(INFO.name, "save", [], 0, 10))[1] == 1


async def test_concurrent_saves_leave_one_whole_graph(store: GraphStore) -> None:
    other = [replace(n, attributes={"v": 2}) for n in NODES]
    await asyncio.gather(store.save(INFO, NODES, EDGES, FILES), store.save(INFO, other, EDGES[:1], FILES))
    nodes = await store.nodes(INFO.name)
    assert nodes in (sorted(NODES, key=lambda n: n.id), sorted(other, key=lambda n: n.id))
    assert len(await store.edges(INFO.name)) in (1, 4)
    await store.ping()


async def test_readers_during_saves_see_one_whole_graph(store: GraphStore) -> None:
    other = [replace(n, attributes={"v": 2}) for n in NODES[:3]]
    whole = ([sorted(NODES, key=lambda n: n.id), sorted(EDGES, key=lambda e: e.key)],
             [sorted(other, key=lambda n: n.id), sorted(EDGES[:1], key=lambda e: e.key)])
    await store.save(INFO, NODES, EDGES, FILES)
    saving = True

    async def saves() -> None:
        nonlocal saving
        for round_ in range(6):
            await store.save(INFO, *((other, EDGES[:1]) if round_ % 2 == 0 else (NODES, EDGES)), FILES)
        saving = False

    async def reads() -> int:
        seen = 0
        while saving:
            nodes, edges = await asyncio.gather(store.nodes(INFO.name), store.edges(INFO.name))  # each one graph's rows
            assert nodes in (whole[0][0], whole[1][0]) and edges in (whole[0][1], whole[1][1])
            seen += 1
        return seen

    _, seen = await asyncio.gather(saves(), reads())
    assert seen > 0
    assert await store.nodes(INFO.name) == whole[0][0]


async def test_a_large_graph_pages_and_is_deleted_whole(store: GraphStore) -> None:
    hub = Node("module/hub", "module", "hub", "hub", None)
    leaves = [Node(f"function/hub.leaf_{i:03}", "function", f"leaf_{i:03}", f"hub.leaf_{i:03}", None, {"i": i}) for i in range(120)]
    edges = [Edge(hub.id, "defines", leaf.id) for leaf in leaves] + [Edge(leaf.id, "calls", hub.id) for leaf in leaves[:30]]
    assert await store.save(INFO, [hub, *leaves], edges, FILES) == SaveCounts(nodes_added=121, edges_added=150)
    out, total = await store.neighbors(INFO.name, hub.id, "out", [], 100, 50)
    assert total == 120 and [n.node.id for n in out] == [leaf.id for leaf in leaves[100:]]
    into, total = await store.neighbors(INFO.name, hub.id, "both", ["calls"], 25, 10)
    assert total == 30 and [n.node.id for n in into] == [leaf.id for leaf in leaves[25:30]]
    found, total = await store.search(INFO.name, "leaf", ["function"], 110, 20)
    assert total == 120 and len(found) == 10
    counts = await store.save(INFO, [hub, *leaves[:60]], edges[:60], FILES)
    assert counts == SaveCounts(nodes_removed=60, edges_removed=90)
    assert len(await store.nodes(INFO.name)) == 61 and len(await store.edge_keys(INFO.name)) == 60
    await store.delete(INFO.name)
    with pytest.raises(NotFound):
        await store.get_graph(INFO.name)
    assert (await store.nodes(INFO.name), await store.files(INFO.name), await store.list_graphs(0, 10)) == ([], {}, ([], 0))
    assert await store.save(INFO, NODES, EDGES, FILES) == SaveCounts(nodes_added=5, edges_added=4)
    assert await store.nodes(INFO.name) == sorted(NODES, key=lambda n: n.id)


async def test_a_big_file_record_round_trips(store: GraphStore) -> None:
    big = "".join(hashlib.sha256(str(i).encode()).hexdigest() for i in range(30_000))  # 1.9 MB that hardly compresses
    files = [FileRecord("gen/big.py", "cc", big), *FILES]
    await store.save(INFO, NODES, EDGES, files)
    assert await store.files(INFO.name) == {f.path: f for f in files}
    assert await store.save(INFO, NODES, EDGES, files) == SaveCounts()
    smaller = [FileRecord("gen/big.py", "dd", big[:1000]), *FILES]
    await store.save(INFO, NODES, EDGES, smaller)
    assert await store.files(INFO.name) == {f.path: f for f in smaller}
    assert await store.nodes(INFO.name) == sorted(NODES, key=lambda n: n.id)
