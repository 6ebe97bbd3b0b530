"""JavaScript, TypeScript and Go in the code graph, names resolved as each language finds them."""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from services.agents.knowledge.graph import REPOSITORY_ID, Node, Span, node_id
from services.agents.knowledge.python_source import Extraction

NODE_BUILTINS = frozenset(
    ["assert", "buffer", "child_process", "cluster", "crypto", "dgram", "dns", "events", "fs", "http", "http2", "https", "net", "os", "path", "perf_hooks", "process", "querystring", "readline", "stream", "string_decoder", "timers", "tls", "url", "util", "v8", "vm", "worker_threads", "zlib"]
)
_SCRIPT_SUFFIXES = (".js", ".jsx", ".mjs", ".cjs", ".ts", ".tsx")


class GraphSink(Protocol):
    def node(self, node: Node) -> str: ...

    def edge(self, source: str, kind: str, target: str, span: Span | None = None, **attributes: object) -> None: ...


@dataclass(frozen=True)
class SourceFile:
    path: str
    extraction: Extraction
    language: str


def _span(file: str, span: list[int]) -> Span:
    return Span(file, span[0], span[1], span[2], span[3])


def _module_key(path: str) -> str:
    for suffix in _SCRIPT_SUFFIXES:
        if path.endswith(suffix):
            return path[: -len(suffix)]
    return path


def _package_of(specifier: str) -> str:
    parts = specifier.removeprefix("node:").split("/")
    return "/".join(parts[:2]) if parts[0].startswith("@") else parts[0]


def add_scripts(graph: GraphSink, files: Sequence[SourceFile]) -> None:
    """JavaScript and TypeScript files: one module per file, `import`/`require` and calls resolved across files."""
    modules = {_module_key(f.path): f for f in files}
    index = {key.removesuffix("/index"): key for key in modules if key.endswith("/index")}
    symbols = {(key, d.qualname): node_id(d.kind, f"{key}.{d.qualname}") for key, f in modules.items() for d in f.extraction.definitions}

    def resolve(specifier: str, importer: str) -> str:
        joined = posixpath.normpath(posixpath.join(posixpath.dirname(importer), specifier))
        for candidate in (joined, _module_key(joined)):  # './api' and './lib/index.js' both name a file
            if candidate in modules:
                return candidate
        return index.get(joined, "")

    for key in sorted(modules):
        file = modules[key]
        module = graph.node(Node(node_id("module", key), "module", key.rsplit("/", 1)[-1], key,
                                 Span(file.path, 1, 0, max(file.extraction.lines, 1), 0),
                                 {"path": file.path, "language": file.language, "lines": file.extraction.lines}))
        graph.edge(REPOSITORY_ID, "contains", module)
        for definition in file.extraction.definitions:
            own = graph.node(Node(symbols[(key, definition.qualname)], definition.kind, definition.qualname.rsplit(".", 1)[-1],
                                  f"{key}.{definition.qualname}", _span(file.path, definition.span),
                                  {"signature": definition.signature} if definition.signature else {}))
            owner = definition.qualname.rsplit(".", 1)[0] if "." in definition.qualname else ""
            graph.edge(symbols[(key, owner)] if owner else module, "defines", own, _span(file.path, definition.span))

    for key in sorted(modules):
        file = modules[key]
        module = node_id("module", key)
        bound: dict[str, tuple[str, str]] = {}  # local name -> (module key, exported name; "" for the module itself)
        for item in file.extraction.imports:
            span = _span(file.path, item.span)
            if item.module.startswith("."):
                target = resolve(item.module, file.path)
                if not target:
                    continue
                graph.edge(module, "imports", node_id("module", target), span)
                if item.alias or item.name:
                    bound[item.alias or item.name] = (target, "" if item.name in ("", "default") else item.name)
                continue
            name = _package_of(item.module)
            stdlib = item.module.startswith("node:") or name in NODE_BUILTINS
            package = graph.node(Node(node_id("package", name), "package", name, name, None, {"stdlib": stdlib}))
            graph.edge(module, "imports", package, span)

        def lookup(callee: str, caller: str) -> str:
            head, _, rest = callee.partition(".")
            if head == "this" and "." in caller:
                return symbols.get((key, f"{caller.rsplit('.', 1)[0]}.{rest}"), "")
            if not rest:
                if (key, head) in symbols:
                    return symbols[(key, head)]
                target, exported = bound.get(head, ("", ""))
                return symbols.get((target, exported), "") if exported else ""
            target, exported = bound.get(head, ("", ""))
            return symbols.get((target, rest), "") if target and not exported else ""

        for definition in file.extraction.definitions:
            for base in definition.bases:
                found = lookup(base, "")
                if found.startswith("class/"):
                    graph.edge(symbols[(key, definition.qualname)], "inherits", found, _span(file.path, definition.span))
        for call in file.extraction.calls:
            found = lookup(call.callee, call.caller)
            if found:
                graph.edge(symbols[(key, call.caller)] if call.caller else module, "calls", found, _span(file.path, call.span))


def go_module_path(root: Path) -> str:
    """The `module` line of go.mod at the root; "" without one."""
    try:
        text = (root / "go.mod").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""
    return next((line.split()[1] for line in text.splitlines() if line.startswith("module ") and len(line.split()) > 1), "")


def add_go(graph: GraphSink, files: Sequence[SourceFile], module_path: str, root_name: str) -> None:
    """Go files: one module per package (folder), named by its import path; imports and calls resolved by it."""
    packages: dict[str, list[SourceFile]] = {}
    for file in files:
        folder = file.path.rsplit("/", 1)[0] if "/" in file.path else ""
        import_path = "/".join(p for p in (module_path or root_name, folder) if p)
        packages.setdefault(import_path, []).append(file)
    symbols = {(pkg, d.qualname): node_id(d.kind, f"{pkg}.{d.qualname}") for pkg, fs in packages.items() for f in fs for d in f.extraction.definitions}
    for pkg in sorted(packages):
        first = min(packages[pkg], key=lambda f: f.path)
        module = graph.node(Node(node_id("module", pkg), "module", pkg.rsplit("/", 1)[-1], pkg,
                                 Span(first.path, 1, 0, max(first.extraction.lines, 1), 0),
                                 {"language": "go", "files": sorted(f.path for f in packages[pkg])}))
        graph.edge(REPOSITORY_ID, "contains", module)
        for file in sorted(packages[pkg], key=lambda f: f.path):
            for definition in file.extraction.definitions:
                own = graph.node(Node(symbols[(pkg, definition.qualname)], definition.kind, definition.qualname.rsplit(".", 1)[-1],
                                      f"{pkg}.{definition.qualname}", _span(file.path, definition.span),
                                      {"signature": definition.signature} if definition.signature else {}))
                owner = definition.qualname.rsplit(".", 1)[0] if "." in definition.qualname else ""
                parent = symbols.get((pkg, owner), module) if owner else module
                graph.edge(parent, "defines", own, _span(file.path, definition.span))
    for pkg in sorted(packages):
        module = node_id("module", pkg)
        for file in sorted(packages[pkg], key=lambda f: f.path):
            bound: dict[str, str] = {}
            for item in file.extraction.imports:
                span = _span(file.path, item.span)
                bound[item.alias or item.module.rsplit("/", 1)[-1]] = item.module
                if item.module in packages:
                    graph.edge(module, "imports", node_id("module", item.module), span)
                    continue
                package = graph.node(Node(node_id("package", item.module), "package", item.module.rsplit("/", 1)[-1], item.module,
                                          None, {"stdlib": "." not in item.module.split("/")[0]}))
                graph.edge(module, "imports", package, span)

            def lookup(name: str) -> str:
                head, _, rest = name.partition(".")
                if not rest:
                    return symbols.get((pkg, head), "")
                return symbols.get((bound.get(head, ""), rest), "")

            for definition in file.extraction.definitions:
                for base in definition.bases:
                    found = lookup(base)
                    if found.startswith("class/"):
                        graph.edge(symbols[(pkg, definition.qualname)], "inherits", found, _span(file.path, definition.span))
            for call in file.extraction.calls:
                found = lookup(call.callee)
                if found:
                    source = symbols[(pkg, call.caller)] if call.caller else module
                    graph.edge(source, "calls", found, _span(file.path, call.span))
