"""Search over node names in Python (the DynamoDB graph store's) ranks as the SQLite store's FTS5 query does."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.agents.knowledge.builder import build_graph
from services.agents.knowledge.graph import GraphInfo, Node
from services.agents.knowledge.name_search import search_nodes
from services.agents.knowledge.store_sqlite import SCHEMA, SqliteGraphStore
from services.runtime.errors import InvalidArgument
from services.runtime.state import SqliteDatabase

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "knowledge"
QUERIES = ["repo", "save", "save all", "order", "OrderRepository", "service", "shop", "test", "json", "models order",
           "s", "a", "audit", "main", "py", "x"]


@pytest.fixture(scope="module")
def nodes() -> list[Node]:
    found: dict[str, Node] = {}
    for project in ("shop", "polyglot"):
        for node in build_graph(FIXTURES / project, tables=[]).nodes:
            found[node.id] = node
    return sorted(found.values(), key=lambda n: n.id)


@pytest.mark.parametrize("kinds", [[], ["function", "method"], ["module"]])
async def test_same_hits_in_the_same_order_as_fts5(tmp_path: Path, nodes: list[Node], kinds: list[str]) -> None:
    database = SqliteDatabase(tmp_path / "graphs.db", SCHEMA)
    try:
        store = SqliteGraphStore(database)
        await store.save(GraphInfo("g", "/g"), nodes, [], [])
        for query in QUERIES:
            expected = await store.search("g", query, kinds, 0, 1000)
            assert search_nodes(nodes, query, kinds, 0, 1000) == expected, query
            assert search_nodes(nodes, query, kinds, 2, 3) == await store.search("g", query, kinds, 2, 3), query
        assert sum(len(search_nodes(nodes, q, kinds, 0, 1000)[0]) for q in QUERIES) > 20  # the queries hit things
    finally:
        database.close()


def test_a_query_without_a_word_names_the_field(nodes: list[Node]) -> None:
    with pytest.raises(InvalidArgument) as bad:
        search_nodes(nodes, " -- ", [], 0, 10)
    assert bad.value.violations[0].field == "query"
