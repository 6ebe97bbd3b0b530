"""Builds the code graph of a folder: reads files (reusing unchanged ones by hash), resolves names, adds entities."""

from __future__ import annotations

import gc
import hashlib
import json
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from services.agents.knowledge import entities
from services.agents.knowledge.graph import REPOSITORY_ID, Edge, FileRecord, Node, Span, node_id
from services.agents.knowledge.polyglot import SourceFile, add_go, add_scripts, go_module_path
from services.agents.knowledge.python_source import Extraction, extract
from services.agents.knowledge.resolver import Resolver, absolute_import, module_name, root_package
from services.agents.knowledge.schema import Table
from services.agents.knowledge.treesitter_source import extract as extract_other
from services.agents.knowledge.treesitter_source import language_of
from services.runtime.file_walk import read_file_capped, walk_files

DOC_SUFFIXES = (".md", ".rst", ".txt")
EXTRACTION_VERSION = "4"  # bump when Extraction changes shape: every cached file is then parsed again


@dataclass
class BuildStats:
    files_parsed: int = 0
    files_reused: int = 0
    files_skipped: int = 0  # too large or not text
    lines: int = 0
    syntax_errors: list[str] = field(default_factory=list)
    truncated: bool = False


@dataclass
class Build:
    nodes: list[Node]
    edges: list[Edge]
    files: list[FileRecord]
    stats: BuildStats


def _is_doc(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return name.upper().startswith("README") or name.endswith((".md", ".rst"))


def _span(file: str, span: list[int]) -> Span:
    return Span(file, span[0], span[1], span[2], span[3])


class _Graph:
    """Nodes and edges as they are added: one node per id, one edge per (source, kind, target), first place wins."""

    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {}
        self.edges: dict[tuple[str, str, str], Edge] = {}

    def node(self, node: Node) -> str:
        self.nodes.setdefault(node.id, node)
        return node.id

    def edge(self, source: str, kind: str, target: str, span: Span | None = None, **attributes: object) -> None:
        if source != target or kind != "contains":
            self.edges.setdefault((source, kind, target), Edge(source, kind, target, span, dict(attributes)))


class _Source:
    def __init__(self, path: str, record: FileRecord, extraction: Extraction | None, lines: int, language: str) -> None:
        self.path = path
        self.record = record
        self.extraction = extraction  # code files; documentation files keep their entities in record.extraction
        self.lines = lines
        self.language = language  # "python", "javascript", "typescript", "tsx", "go"; "" for documentation


def _read(root: Path, files: list[Path], previous: Mapping[str, FileRecord], max_file_bytes: int,
          check: Callable[[], None], stats: BuildStats) -> list[_Source]:
    sources: list[_Source] = []
    for file in files:
        check()
        path = file.relative_to(root).as_posix()
        language = "python" if path.endswith(".py") else language_of(path)
        if not language and not _is_doc(path):
            continue
        if language == "go" and "vendor" in path.split("/")[:-1]:
            continue  # vendored dependencies are other projects' code
        try:
            _, data = read_file_capped(file, max_file_bytes)
        except OSError:
            data = None
        if data is None:
            stats.files_skipped += 1
            continue
        digest = hashlib.sha256(EXTRACTION_VERSION.encode() + data).hexdigest()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            stats.files_skipped += 1
            continue
        lines = text.count("\n") + (1 if text and not text.endswith("\n") else 0)
        stats.lines += lines
        earlier = previous.get(path)
        if not language:
            if earlier is None or earlier.sha256 != digest:
                found = [m.to_list() for m in entities.mentions(text, markdown=True)]
                earlier = FileRecord(path, digest, json.dumps({"mentions": found}, separators=(",", ":")))
            sources.append(_Source(path, earlier, None, lines, ""))
            continue
        if earlier is not None and earlier.sha256 == digest:
            extraction = Extraction.from_json(json.loads(earlier.extraction))
            record = earlier
            stats.files_reused += 1
        else:
            extraction = extract(text, path) if language == "python" else extract_other(text, path, language)
            record = FileRecord(path, digest, json.dumps(extraction.to_json(), separators=(",", ":")))
            stats.files_parsed += 1
        if extraction.error:
            stats.syntax_errors.append(path)
        sources.append(_Source(path, record, extraction, lines, language))
    return sources


def build_graph(
    root: Path,
    *,
    previous: Mapping[str, FileRecord] | None = None,
    max_files: int = 20000,
    max_file_bytes: int = 1_000_000,
    tables: Iterable[Table] = (),
    check: Callable[[], None] = lambda: None,
) -> Build:
    """The graph of `root`. `previous` holds the file records of the last build: unchanged files are not parsed again."""
    # Building allocates millions of small objects and frees none: the cyclic collector's passes over them would
    # cost more than the build itself, so it waits until the end.
    paused = gc.isenabled()
    gc.disable()
    try:
        return _build(root, previous or {}, max_files, max_file_bytes, tables, check)
    finally:
        if paused:
            gc.enable()


def _build(root: Path, previous: Mapping[str, FileRecord], max_files: int, max_file_bytes: int,
           tables: Iterable[Table], check: Callable[[], None]) -> Build:
    stats = BuildStats()
    walked, stats.truncated = walk_files(root, max_files=max_files)
    sources = _read(root, walked, previous, max_file_bytes, check, stats)
    graph = _Graph()
    graph.node(Node(REPOSITORY_ID, "repository", root.name, root.name, None, {"path": str(root)}))
    cached = _add_python(graph, [s for s in sources if s.language == "python"], root.name)
    code = {s.path: SourceFile(s.path, s.extraction, s.language) for s in sources if s.extraction is not None}
    add_scripts(graph, [f for f in code.values() if f.language in ("javascript", "typescript", "tsx")])
    add_go(graph, [f for f in code.values() if f.language == "go"], go_module_path(root), root.name)
    _add_docs(graph, [s for s in sources if s.extraction is None], cached)
    _add_tables(graph, tables)
    nodes = sorted(graph.nodes.values(), key=lambda n: n.id)
    edges = sorted(graph.edges.values(), key=lambda e: e.key)
    return Build(nodes, edges, sorted((s.record for s in sources), key=lambda r: r.path), stats)


def _add_python(graph: _Graph, sources: list[_Source], root_name: str) -> dict[str, list[entities.Mention]]:
    """Adds the Python modules; returns the cached docstring entities of each node that has a docstring."""
    package_dirs = {s.path.rsplit("/", 1)[0] if "/" in s.path else "" for s in sources if s.path.endswith("__init__.py")}
    modules: dict[str, tuple[Extraction, bool]] = {}
    owner: dict[str, _Source] = {}
    for source in sources:
        name = module_name(source.path, package_dirs, root_package(root_name, package_dirs))
        if name in modules:  # two scripts with one name in different folders: the later one keeps its path
            name = source.path[: -len(".py")].replace("/", ".")
        assert source.extraction is not None
        modules[name] = (source.extraction, source.path.endswith("__init__.py"))
        owner[name] = source
    symbols: dict[str, str] = {}  # qualified name -> node id
    cached: dict[str, list[entities.Mention]] = {}
    for module, (extraction, _) in modules.items():
        symbols[module] = node_id("module", module)
        for definition in extraction.definitions:
            symbols[f"{module}.{definition.qualname}"] = node_id(definition.kind, f"{module}.{definition.qualname}")
    resolver = Resolver(modules, set(symbols))

    for module in sorted(modules):
        extraction, is_package = modules[module]
        source = owner[module]
        module_id = symbols[module]
        attributes: dict[str, object] = {"path": source.path, "lines": extraction.lines, "sha256": source.record.sha256}
        if extraction.docstring:
            attributes["docstring"] = extraction.docstring
        if extraction.error:
            attributes["error"] = extraction.error
        if is_package:
            attributes["package"] = True
        graph.node(Node(module_id, "module", module.rsplit(".", 1)[-1], module, Span(source.path, 1, 0, max(extraction.lines, 1), 0), attributes))
        parent = module.rsplit(".", 1)[0] if "." in module else ""
        graph.edge(symbols.get(parent, REPOSITORY_ID), "contains", module_id)
        for definition in extraction.definitions:
            qualified = f"{module}.{definition.qualname}"
            attrs: dict[str, object] = {}
            if definition.docstring:
                attrs["docstring"] = definition.docstring
            if definition.signature:
                attrs["signature"] = definition.signature
            if definition.is_async:
                attrs["async"] = True
            if definition.bases:
                attrs["bases"] = definition.bases
            own = graph.node(Node(symbols[qualified], definition.kind, definition.qualname.rsplit(".", 1)[-1], qualified,
                                  _span(source.path, definition.span), attrs))
            enclosing = qualified.rsplit(".", 1)[0]
            graph.edge(symbols[enclosing], "defines", own, _span(source.path, definition.span))

    # Bases first: method lookups through `self` follow them.
    for module, (extraction, _) in sorted(modules.items()):
        for definition in extraction.definitions:
            if definition.kind != "class":
                continue
            qualified = f"{module}.{definition.qualname}"
            scope = definition.qualname.rsplit(".", 1)[0] if "." in definition.qualname else ""
            found = [resolver.in_scope(base, module, scope, "") for base in definition.bases]
            resolver.bases[qualified] = [b for b in found if b and symbols[b].startswith("class/")]
    for module, (extraction, is_package) in sorted(modules.items()):
        path = owner[module].path
        module_id = symbols[module]
        for definition in extraction.definitions:
            if definition.kind == "class":
                qualified = f"{module}.{definition.qualname}"
                for base in resolver.bases[qualified]:
                    graph.edge(symbols[qualified], "inherits", symbols[base], _span(path, definition.span))
        for item in extraction.imports:
            _add_import(graph, symbols, modules, module_id, absolute_import(item, module, is_package), item.name, item.level, _span(path, item.span))
        kinds = {d.qualname: d.kind for d in extraction.definitions}
        for call in extraction.calls:
            enclosing_class = _enclosing_class(call.caller, kinds)
            target = resolver.in_scope(call.callee, module, call.caller, enclosing_class)
            if target and target != module and not symbols[target].startswith("module/"):
                source_id = symbols[f"{module}.{call.caller}"] if call.caller else module_id
                graph.edge(source_id, "calls", symbols[target], _span(path, call.span))
        for scope, listed in extraction.mentions.items():
            cached[symbols[f"{module}.{scope}" if scope else module]] = [entities.Mention.from_list(m) for m in listed]
    return cached


def _enclosing_class(scope: str, kinds: dict[str, str]) -> str:
    """The class whose method `scope` is (`Order` for `Order.total`), or "" when the scope is not a method."""
    if not scope or kinds.get(scope) not in ("method", "test") or "." not in scope:
        return ""
    owner = scope.rsplit(".", 1)[0]
    return owner if kinds.get(owner) == "class" else ""


def _add_import(graph: _Graph, symbols: dict[str, str], modules: Mapping[str, object], module_id: str,
                target: str, name: str, level: int, span: Span) -> None:
    if not target:
        return
    if name and name != "*" and f"{target}.{name}" in modules:
        graph.edge(module_id, "imports", symbols[f"{target}.{name}"], span)
        return
    parts = target.split(".")
    for cut in range(len(parts), 0, -1):
        prefix = ".".join(parts[:cut])
        if prefix in modules:
            graph.edge(module_id, "imports", symbols[prefix], span)
            return
    if level:
        return  # a relative import that names nothing in the project
    top = parts[0]
    package = graph.node(Node(node_id("package", top), "package", top, top, None, {"stdlib": top in sys.stdlib_module_names}))
    graph.edge(module_id, "imports", package, span)


def _add_docs(graph: _Graph, sources: list[_Source], cached: dict[str, list[entities.Mention]]) -> None:
    texts: list[tuple[str, list[entities.Mention], Span | None]] = []  # (node, its entities, where)
    for source in sources:
        span = Span(source.path, 1, 0, max(source.lines, 1), 0)
        file_id = graph.node(Node(node_id("file", source.path), "file", source.path.rsplit("/", 1)[-1], source.path,
                                  span, {"sha256": source.record.sha256}))
        graph.edge(REPOSITORY_ID, "contains", file_id)
        found = json.loads(source.record.extraction)["mentions"]
        texts.append((file_id, [entities.Mention.from_list(m) for m in found], span))
    by_name: dict[str, set[str]] = {}
    for node in sorted(graph.nodes.values(), key=lambda n: n.id):
        if node.kind in ("module", "class", "function", "method", "test"):
            by_name.setdefault(node.qualified_name, set()).add(node.id)
            by_name.setdefault(node.name, set()).add(node.id)
        if node.id in cached:
            texts.append((node.id, cached[node.id], node.span))
    for source_id, found, where in texts:
        _link_mentions(graph, by_name, source_id, found, where)


def _link_mentions(graph: _Graph, by_name: dict[str, set[str]], source: str, found: list[entities.Mention], span: Span | None) -> None:
    """An identifier that names one project definition links straight to it; anything else becomes an entity node."""
    for mention in found:
        targets = sorted(by_name.get(mention.key, ())) if mention.kind == "identifier" else []
        if len(targets) == 1:
            if targets[0] != source:
                graph.edge(source, "mentions", targets[0], span, count=mention.count)
            continue
        entity = graph.node(Node(node_id("entity", mention.key), "entity", mention.text, mention.key, None, {"category": mention.kind}))
        graph.edge(source, "mentions", entity, span, count=mention.count)


def _add_tables(graph: _Graph, tables: Iterable[Table]) -> None:
    for table in tables:
        table_id = graph.node(Node(node_id("table", table.name), "table", table.name.rsplit(".", 1)[-1], table.name, None,
                                   {"columns": [c.name for c in table.columns]}))
        graph.edge(REPOSITORY_ID, "contains", table_id)
    for table in tables:
        for key in table.foreign_keys:
            target = node_id("table", key.table)
            if target in graph.nodes:
                graph.edge(node_id("table", table.name), "references", target, None,
                           columns=list(key.columns), referenced_columns=list(key.referenced_columns))
