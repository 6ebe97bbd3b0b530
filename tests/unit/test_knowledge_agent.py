"""The Knowledge Builder agent through its spec: the graph lands in the store, rebuilds are incremental, findings exact."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.agents.base import FileSpan, ModelReply, NamedObject, RunContext
from services.agents.knowledge.agent import spec
from services.agents.knowledge.graph import graph_name
from services.agents.knowledge.store_sqlite import SCHEMA, SqliteGraphStore
from services.runtime.arguments import check_arguments
from services.runtime.errors import InvalidArgument
from services.runtime.state import SqliteDatabase

SHOP = Path(__file__).resolve().parents[1] / "fixtures" / "knowledge" / "shop"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    copy = tmp_path / "shop"
    shutil.copytree(SHOP, copy)
    return copy


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteGraphStore]:
    database = SqliteDatabase(tmp_path / "knowledge.db", SCHEMA)
    yield SqliteGraphStore(database)
    database.close()


class _Model:
    """A stand-in for the configured model: answers in the asked format for two of the terms."""

    model_id = "stand-in"

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.prompts: list[str] = []

    def complete(self, system: str, prompt: str, *, max_tokens: int = 1024) -> ModelReply:
        if self.fail:
            raise RuntimeError("throttled")
        self.prompts.append(prompt)
        return ModelReply("order totals :: Sums of orders with tax.\nnonsense line\nOrderArchive :: Old orders.", self.model_id, 40, 12)


def test_run_stores_the_graph_and_reports_cycles(project: Path, store: SqliteGraphStore) -> None:
    agent = spec(store)
    arguments = {"path": str(project), "schema": "schema.sql", "dialect": "sqlite"}
    check_arguments(agent.parameters, arguments, "input")
    result = agent.run(arguments, RunContext(roots=(project.parent,)))
    name = graph_name(project)
    assert result.metrics["graph"] == name
    assert (result.metrics["files_parsed"], result.metrics["files_reused"], result.metrics["nodes_added"]) == (5, 0, 27)
    assert result.metrics["import_cycles"] == [["module/shop.repo", "module/shop.service"]]
    assert [(f.rule_id, f.severity, f.location) for f in result.findings] == [
        ("import-cycle", "medium", NamedObject("node", "module/shop.repo")),
    ]
    assert result.findings[0].message == "modules import each other in a cycle: shop.repo -> shop.service -> shop.repo"
    assert result.llm_status == "not_configured"
    assert result.artifacts[0].name == "graph.md" and "| module | 5 |" in result.artifacts[0].content
    info = asyncio.run(store.get_graph(name))
    assert (info.node_count, info.edge_count) == (27, 45)
    fk = asyncio.run(store.neighbors(name, "table/orders", "out", ["references"], 0, 10))[0]
    assert [n.node.id for n in fk] == ["table/customers"]

    again = agent.run(arguments, RunContext(roots=(project.parent,)))
    assert (again.metrics["files_parsed"], again.metrics["files_reused"]) == (0, 5)
    assert (again.metrics["nodes_added"], again.metrics["nodes_updated"], again.metrics["edges_added"]) == (0, 0, 0)

    (project / "shop" / "broken.py").write_text("def oops(:\n")
    third = agent.run({"path": str(project), "discover_schema": False}, RunContext(roots=(project.parent,)))
    assert (third.metrics["files_parsed"], third.metrics["files_reused"]) == (1, 5)
    assert third.metrics["nodes_removed"] == 2  # the tables: this run neither was given nor looked for a schema
    assert [(f.rule_id, f.location) for f in third.findings] == [
        ("import-cycle", NamedObject("node", "module/shop.repo")), ("syntax-error", FileSpan("shop/broken.py", 1)),
    ]


def test_schema_files_are_found_when_none_is_given(project: Path, store: SqliteGraphStore) -> None:
    (project / "migrations").mkdir()
    (project / "migrations" / "V2__items.sql").write_text(
        "CREATE TABLE items (id INTEGER PRIMARY KEY, order_id INTEGER REFERENCES orders(id));\n")
    (project / "queries.sql").write_text("SELECT * FROM orders;\n")  # queries are not schema
    result = spec(store).run({"path": str(project)}, RunContext(roots=(project.parent,)))
    assert result.metrics["tables"] == 3
    name = graph_name(project)
    fk = asyncio.run(store.neighbors(name, "table/items", "out", ["references"], 0, 10))[0]
    assert [n.node.id for n in fk] == ["table/orders"]


def test_model_describes_entities_and_says_so(project: Path, store: SqliteGraphStore) -> None:
    model = _Model()
    result = spec(store).run({"path": str(project)}, RunContext(roots=(project.parent,), model=model))
    assert result.llm_status == "completed" and (result.input_tokens, result.output_tokens) == (40, 12)
    assert "- order totals" in model.prompts[0] and "- OrderArchive" in model.prompts[0]
    name = graph_name(project)
    described = asyncio.run(store.node(name, "entity/order totals")).attributes
    assert described == {"category": "phrase", "description": "Sums of orders with tax.", "description_source": "model:stand-in"}
    assert "description" not in asyncio.run(store.node(name, "entity/shop service")).attributes

    failed = spec(store).run({"path": str(project)}, RunContext(roots=(project.parent,), model=_Model(fail=True)))
    assert failed.llm_status == "failed"
    assert "description" not in asyncio.run(store.node(name, "entity/order totals")).attributes


def test_bad_input_names_the_field(project: Path, store: SqliteGraphStore, tmp_path: Path) -> None:
    agent = spec(store)
    with pytest.raises(InvalidArgument) as outside:
        agent.run({"path": str(project)}, RunContext(roots=(tmp_path / "elsewhere",)))
    assert outside.value.violations[0].field == "input.path"
    with pytest.raises(InvalidArgument) as schema:
        agent.run({"path": str(project), "schema": "../../etc/passwd"}, RunContext(roots=(project.parent,)))
    assert schema.value.violations[0].field == "input.schema"
    with pytest.raises(InvalidArgument) as missing:
        agent.run({"path": str(project), "schema": "nope.sql"}, RunContext(roots=(project.parent,)))
    assert missing.value.violations[0].field == "input.schema"
    with pytest.raises(InvalidArgument) as dialect:
        check_arguments(agent.parameters, {"path": str(project), "dialect": "oracle"}, "input")
    assert dialect.value.violations[0].field.startswith("input.dialect")
