"""Knowledge Builder on JavaScript, TypeScript and Go (tree-sitter wheels): the exact graph of a fixture project."""

from __future__ import annotations

from pathlib import Path

from services.agents.knowledge.builder import build_graph
from services.agents.knowledge.graph import Span
from services.agents.knowledge.metrics import measure

POLYGLOT = Path(__file__).resolve().parents[1] / "fixtures" / "knowledge" / "polyglot"
GO = "example.com/app"  # the module path in the fixture's go.mod

EDGES = {
    # Go: one module per package, named by its import path; methods hang off their receiver's type.
    ("repository", "contains", f"module/{GO}/cmd/server"),
    ("repository", "contains", f"module/{GO}/internal/store"),
    (f"module/{GO}/cmd/server", "defines", f"function/{GO}/cmd/server.main"),
    (f"module/{GO}/cmd/server", "imports", f"module/{GO}/internal/store"),
    (f"module/{GO}/cmd/server", "imports", "package/log"),
    (f"module/{GO}/internal/store", "defines", f"class/{GO}/internal/store.Base"),
    (f"module/{GO}/internal/store", "defines", f"class/{GO}/internal/store.DB"),
    (f"module/{GO}/internal/store", "defines", f"function/{GO}/internal/store.Open"),
    (f"module/{GO}/internal/store", "defines", f"function/{GO}/internal/store.normalize"),
    (f"module/{GO}/internal/store", "defines", f"test/{GO}/internal/store.TestOpen"),
    (f"module/{GO}/internal/store", "imports", "package/fmt"),
    (f"module/{GO}/internal/store", "imports", "package/testing"),
    (f"class/{GO}/internal/store.DB", "defines", f"method/{GO}/internal/store.DB.Get"),
    (f"class/{GO}/internal/store.DB", "inherits", f"class/{GO}/internal/store.Base"),  # an embedded struct
    (f"function/{GO}/cmd/server.main", "calls", f"function/{GO}/internal/store.Open"),  # through the import alias
    (f"method/{GO}/internal/store.DB.Get", "calls", f"function/{GO}/internal/store.normalize"),
    (f"test/{GO}/internal/store.TestOpen", "calls", f"function/{GO}/internal/store.Open"),
    # JavaScript and TypeScript: one module per file; index files and extensions resolved as bundlers do.
    ("repository", "contains", "module/web/src/api"),
    ("repository", "contains", "module/web/src/app"),
    ("repository", "contains", "module/web/src/lib/index"),
    ("module/web/src/api", "defines", "class/web/src/api.AuthClient"),
    ("module/web/src/api", "defines", "class/web/src/api.Client"),
    ("module/web/src/api", "defines", "function/web/src/api.fetchUser"),
    ("module/web/src/api", "imports", "module/web/src/lib/index"),  # './lib'
    ("module/web/src/api", "imports", "package/axios"),
    ("module/web/src/app", "defines", "function/web/src/app.main"),
    ("module/web/src/app", "imports", "module/web/src/api"),
    ("module/web/src/app", "imports", "module/web/src/lib/index"),  # './lib/index.js'
    ("module/web/src/app", "imports", "package/fs"),  # require('node:fs')
    ("module/web/src/app", "calls", "function/web/src/app.main"),
    ("module/web/src/lib/index", "defines", "function/web/src/lib/index.format"),
    ("class/web/src/api.Client", "defines", "method/web/src/api.Client.get"),
    ("class/web/src/api.Client", "defines", "method/web/src/api.Client.url"),
    ("class/web/src/api.AuthClient", "inherits", "class/web/src/api.Client"),
    ("function/web/src/api.fetchUser", "calls", "class/web/src/api.Client"),  # new Client()
    ("function/web/src/app.main", "calls", "function/web/src/api.fetchUser"),  # api.fetchUser through `import * as api`
    ("function/web/src/app.main", "calls", "function/web/src/lib/index.format"),  # fmt, an alias of format
    ("method/web/src/api.Client.get", "calls", "method/web/src/api.Client.url"),  # this.url
    ("method/web/src/api.Client.url", "calls", "function/web/src/lib/index.format"),
}


def test_exact_graph_of_javascript_typescript_and_go() -> None:
    build = build_graph(POLYGLOT)
    assert {e.key for e in build.edges} == EDGES
    by_id = {n.id: n for n in build.nodes}
    assert by_id[f"method/{GO}/internal/store.DB.Get"].span == Span("internal/store/store.go", 12, 0, 14, 1)
    assert by_id["method/web/src/api.Client.url"].span == Span("web/src/api.ts", 9, 2, 11, 3)
    assert by_id["method/web/src/api.Client.url"].attributes == {"signature": "(path: string)"}
    assert by_id[f"module/{GO}/internal/store"].attributes == {
        "language": "go", "files": ["internal/store/store.go", "internal/store/store_test.go"],
    }
    assert by_id["module/web/src/api"].attributes["language"] == "typescript"
    assert {n.id: n.attributes["stdlib"] for n in build.nodes if n.kind == "package"} == {
        "package/axios": False, "package/fmt": True, "package/fs": True, "package/log": True, "package/testing": True,
    }
    assert build.stats.files_parsed == 6 and build.stats.syntax_errors == []


def test_metrics_cover_every_language() -> None:
    build = build_graph(POLYGLOT)
    _, figures = measure(build.nodes, build.edges)
    assert figures["import_cycles"] == []
    assert figures["nodes_by_kind"]["module"] == 5
    assert figures["most_called"][0] == {"id": f"function/{GO}/internal/store.Open", "fan_in": 2}


def test_rebuild_reuses_parsed_files_and_reports_broken_ones(tmp_path: Path) -> None:
    (tmp_path / "ok.js").write_text("export function a() { return b(); }\nfunction b() {}\n")
    (tmp_path / "bad.go").write_text("package x\nfunc (\n")
    (tmp_path / "vendor" / "lib").mkdir(parents=True)
    (tmp_path / "vendor" / "lib" / "lib.go").write_text("package lib\nfunc Big() {}\n")
    first = build_graph(tmp_path)
    assert first.stats.syntax_errors == ["bad.go"]
    assert not [n for n in first.nodes if "Big" in n.id]  # vendored code is not the project's
    assert ("function/ok.a", "calls", "function/ok.b") in {e.key for e in first.edges}
    again = build_graph(tmp_path, previous={f.path: f for f in first.files})
    assert (again.stats.files_parsed, again.stats.files_reused) == (0, 2)
    assert again.edges == first.edges
