"""Knowledge Builder: the exact graph of a fixture project with known content, and incremental rebuilds."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from services.agents.knowledge.builder import build_graph
from services.agents.knowledge.graph import Span, graph_name
from services.agents.knowledge.schema import Column, ForeignKey, Table

SHOP = Path(__file__).resolve().parents[1] / "fixtures" / "knowledge" / "shop"

NODES = {
    "repository",
    "file/README.md",
    "module/shop", "module/shop.models", "module/shop.repo", "module/shop.service", "module/test_service",
    "class/shop.models.Customer", "class/shop.models.Entity", "class/shop.models.Order",
    "function/shop.repo.save", "function/shop.service.audit", "function/shop.service.place_order",
    "method/shop.models.Entity.key", "method/shop.models.Order.describe", "method/shop.models.Order.total",
    "test/test_service.test_place_order", "test/test_service.test_refuses_zero",
    "package/dataclasses", "package/json", "package/pytest",
    "entity/OrderArchive", "entity/ValueError", "entity/order totals", "entity/shop service",
}

CODE_EDGES = {
    ("repository", "contains", "file/README.md"),
    ("repository", "contains", "module/shop"),
    ("repository", "contains", "module/test_service"),
    ("module/shop", "contains", "module/shop.models"),
    ("module/shop", "contains", "module/shop.repo"),
    ("module/shop", "contains", "module/shop.service"),
    ("module/shop.models", "defines", "class/shop.models.Customer"),
    ("module/shop.models", "defines", "class/shop.models.Entity"),
    ("module/shop.models", "defines", "class/shop.models.Order"),
    ("class/shop.models.Entity", "defines", "method/shop.models.Entity.key"),
    ("class/shop.models.Order", "defines", "method/shop.models.Order.describe"),
    ("class/shop.models.Order", "defines", "method/shop.models.Order.total"),
    ("module/shop.repo", "defines", "function/shop.repo.save"),
    ("module/shop.service", "defines", "function/shop.service.audit"),
    ("module/shop.service", "defines", "function/shop.service.place_order"),
    ("module/test_service", "defines", "test/test_service.test_place_order"),
    ("module/test_service", "defines", "test/test_service.test_refuses_zero"),
    ("module/shop", "imports", "module/shop.models"),
    ("module/shop.models", "imports", "package/dataclasses"),
    ("module/shop.repo", "imports", "module/shop.service"),  # `from . import service`
    ("module/shop.service", "imports", "module/shop.models"),
    ("module/shop.service", "imports", "module/shop.repo"),
    ("module/shop.service", "imports", "package/json"),
    ("module/test_service", "imports", "module/shop.service"),
    ("module/test_service", "imports", "package/pytest"),
    ("class/shop.models.Customer", "inherits", "class/shop.models.Entity"),
    ("class/shop.models.Order", "inherits", "class/shop.models.Entity"),
    ("function/shop.repo.save", "calls", "function/shop.service.audit"),  # module alias from a relative import
    ("function/shop.service.place_order", "calls", "class/shop.models.Order"),  # a constructor
    ("function/shop.service.place_order", "calls", "function/shop.repo.save"),
    ("method/shop.models.Order.describe", "calls", "method/shop.models.Entity.key"),  # self.key() through the base
    ("method/shop.models.Order.describe", "calls", "method/shop.models.Order.total"),
    ("test/test_service.test_place_order", "calls", "function/shop.service.place_order"),
    ("test/test_service.test_refuses_zero", "calls", "function/shop.service.place_order"),
}

MENTIONS = {
    # README: inline code and a dotted name link to the code itself; the rest become entities.
    ("file/README.md", "mentions", "function/shop.service.place_order"),
    ("file/README.md", "mentions", "class/shop.models.Order"),
    ("file/README.md", "mentions", "module/shop.repo"),
    ("file/README.md", "mentions", "method/shop.models.Order.total"),
    ("file/README.md", "mentions", "entity/OrderArchive"),
    ("file/README.md", "mentions", "entity/order totals"),  # a heading phrase
    ("file/README.md", "mentions", "entity/shop service"),
    ("function/shop.service.place_order", "mentions", "entity/ValueError"),
}


@pytest.fixture(scope="module")
def shop_build():  # type: ignore[no-untyped-def]
    return build_graph(SHOP, tables=[
        Table("customers", (Column("id", "INTEGER", False, True), Column("name", "TEXT", False))),
        Table("orders", (Column("id", "INTEGER", False, True), Column("customer_id", "INTEGER", False), Column("amount", "REAL")),
              (ForeignKey(("customer_id",), "customers", ("id",)),)),
    ])


def test_exact_nodes_and_edges(shop_build) -> None:  # type: ignore[no-untyped-def]
    nodes = {n.id for n in shop_build.nodes}
    assert nodes == NODES | {"table/customers", "table/orders"}
    edges = {e.key for e in shop_build.edges}
    tables = {("repository", "contains", "table/customers"), ("repository", "contains", "table/orders"),
              ("table/orders", "references", "table/customers")}
    assert edges == CODE_EDGES | MENTIONS | tables


def test_every_code_node_keeps_its_source_span(shop_build) -> None:  # type: ignore[no-untyped-def]
    by_id = {n.id: n for n in shop_build.nodes}
    assert by_id["method/shop.models.Order.total"].span == Span("shop/models.py", 27, 4, 33, 53)
    assert by_id["function/shop.service.place_order"].span == Span("shop/service.py", 9, 0, 26, 24)
    assert by_id["class/shop.models.Order"].span == Span("shop/models.py", 16, 0, 36, 46)  # the class line, below its decorator
    assert by_id["module/shop.models"].span == Span("shop/models.py", 1, 0, 40, 0)
    assert by_id["file/README.md"].span == Span("README.md", 1, 0, 7, 0)
    assert all(n.span is not None for n in shop_build.nodes if n.kind in ("module", "class", "function", "method", "test", "file"))
    assert by_id["function/shop.service.place_order"].attributes["signature"] == "(customer: str, amount: float) -> float"
    assert by_id["class/shop.models.Order"].attributes["bases"] == ["Entity"]
    assert by_id["package/json"].attributes == {"stdlib": True}
    assert by_id["package/pytest"].attributes == {"stdlib": False}
    imports = {e.key: e for e in shop_build.edges}[("module/shop.service", "imports", "module/shop.repo")]
    assert imports.span == Span("shop/service.py", 5, 0, 5, 21)
    fk = {e.key: e for e in shop_build.edges}[("table/orders", "references", "table/customers")]
    assert fk.attributes == {"columns": ["customer_id"], "referenced_columns": ["id"]}
    assert by_id["table/orders"].attributes == {"columns": ["id", "customer_id", "amount"]}


def test_ids_are_stable_across_runs_and_folders(tmp_path: Path, shop_build) -> None:  # type: ignore[no-untyped-def]
    copy = tmp_path / "elsewhere"
    shutil.copytree(SHOP, copy)
    again = build_graph(copy, tables=[])
    assert {n.id for n in again.nodes} == NODES
    assert [e.key for e in again.edges] == [e.key for e in shop_build.edges if not e.key[2].startswith("table/")]
    assert graph_name(SHOP) == graph_name(SHOP) and graph_name(SHOP) != graph_name(copy)
    assert graph_name(copy).startswith("elsewhere-")


def test_rebuild_parses_only_changed_files(tmp_path: Path) -> None:
    project = tmp_path / "shop"
    shutil.copytree(SHOP, project)
    first = build_graph(project)
    assert (first.stats.files_parsed, first.stats.files_reused) == (5, 0)
    previous = {f.path: f for f in first.files}
    second = build_graph(project, previous=previous)
    assert (second.stats.files_parsed, second.stats.files_reused) == (0, 5)
    assert second.nodes == first.nodes and second.edges == first.edges
    (project / "shop" / "repo.py").write_text('"""Storage of orders."""\n\n\ndef save(order) -> None:\n    return None\n')
    third = build_graph(project, previous={f.path: f for f in second.files})
    assert (third.stats.files_parsed, third.stats.files_reused) == (1, 4)
    keys = {e.key for e in third.edges}
    assert ("module/shop.repo", "imports", "module/shop.service") not in keys
    assert ("function/shop.repo.save", "calls", "function/shop.service.audit") not in keys
    assert ("function/shop.service.place_order", "calls", "function/shop.repo.save") in keys


def test_syntax_error_keeps_the_module_and_says_why(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("def oops(:\n")
    (tmp_path / "fine.py").write_text("import broken\n\ndef ok():\n    broken.oops()\n")
    build = build_graph(tmp_path)
    broken = {n.id: n for n in build.nodes}["module/broken"]
    assert broken.attributes["error"].startswith("SyntaxError")
    assert build.stats.syntax_errors == ["broken.py"]
    assert ("module/fine", "imports", "module/broken") in {e.key for e in build.edges}


def test_src_layout_and_relative_imports(tmp_path: Path) -> None:
    package = tmp_path / "src" / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("from ..core import Engine as E\n")
    (package / "core.py").write_text("class Engine:\n    def run(self):\n        return helper()\n\ndef helper():\n    return 1\n")
    (package / "sub" / "use.py").write_text("from pkg.sub import E\n\ndef go():\n    return E().run()\n")
    build = build_graph(tmp_path)
    keys = {e.key for e in build.edges}
    assert ("module/pkg.sub", "imports", "module/pkg.core") in keys
    assert ("module/pkg.sub.use", "imports", "module/pkg.sub") in keys
    assert ("function/pkg.sub.use.go", "calls", "class/pkg.core.Engine") in keys  # through the re-export and alias
    assert ("method/pkg.core.Engine.run", "calls", "function/pkg.core.helper") in keys
    assert ("module/pkg", "contains", "module/pkg.sub") in keys


def test_file_limit_truncates(tmp_path: Path) -> None:
    for i in range(5):
        (tmp_path / f"m{i}.py").write_text(f"X = {i}\n")
    build = build_graph(tmp_path, max_files=3)
    assert build.stats.truncated is True
    assert sorted(n.id for n in build.nodes if n.kind == "module") == ["module/m0", "module/m1", "module/m2"]


def test_a_folder_that_is_itself_a_package_keeps_its_name(tmp_path: Path) -> None:
    package = tmp_path / "engine"
    package.mkdir()
    (package / "__init__.py").write_text("from engine.core import run\n")
    (package / "core.py").write_text("from . import util\n\ndef run():\n    return util.helper()\n")
    (package / "util.py").write_text("import engine\n\ndef helper():\n    return engine.run\n")
    build = build_graph(package)
    assert sorted(n.id for n in build.nodes if n.kind == "module") == ["module/engine", "module/engine.core", "module/engine.util"]
    keys = {e.key for e in build.edges}
    assert ("module/engine", "imports", "module/engine.core") in keys
    assert ("module/engine.util", "imports", "module/engine") in keys  # not an external package
    assert ("function/engine.core.run", "calls", "function/engine.util.helper") in keys
    assert ("repository", "contains", "module/engine") in keys and ("module/engine", "contains", "module/engine.util") in keys
