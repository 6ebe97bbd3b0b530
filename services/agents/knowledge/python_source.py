"""What one Python file holds (definitions, imports, calls), read with the ast module; the code is never imported."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any

from services.agents.knowledge.entities import mentions


@dataclass
class Definition:
    """A class, function, method or test, by its dotted name inside the module (`Order.total`)."""

    kind: str  # "class", "function", "method" or "test"
    qualname: str
    span: list[int]  # start line, start column, end line, end column
    docstring: str = ""
    bases: list[str] = field(default_factory=list)  # classes: base expressions as written (`models.Entity`)
    signature: str = ""  # functions: `(order: Order, *, dry_run: bool = False) -> float`
    is_async: bool = False


@dataclass
class Import:
    """`import a.b as c` is (module "a.b", name "", alias "c"); `from ..x import y` is ("x", "y", "", level 2)."""

    module: str
    name: str
    alias: str
    level: int
    span: list[int]


@dataclass
class Call:
    """A call whose callee is a dotted name (`repo.save`), made in `caller` (a definition's qualname, "" = module)."""

    caller: str
    callee: str
    span: list[int]


@dataclass
class Extraction:
    """Everything the builder needs from one file, named only as the file names things (the builder resolves names
    across files afterwards), so it can be cached by content hash and reused while the file is unchanged."""

    docstring: str = ""
    lines: int = 0
    definitions: list[Definition] = field(default_factory=list)
    imports: list[Import] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    error: str = ""  # a syntax error: the file is a module node with nothing inside
    mentions: dict[str, list[list[Any]]] = field(default_factory=dict)  # docstring entities by qualname ("" = module)

    def to_json(self) -> dict[str, Any]:
        """Lists rather than objects per item: the cache of a large tree stays small and quick to read."""
        return {
            "docstring": self.docstring,
            "lines": self.lines,
            "error": self.error,
            "definitions": [[d.kind, d.qualname, d.span, d.docstring, d.bases, d.signature, d.is_async] for d in self.definitions],
            "imports": [[i.module, i.name, i.alias, i.level, i.span] for i in self.imports],
            "calls": [[c.caller, c.callee, c.span] for c in self.calls],
            "mentions": self.mentions,
        }

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Extraction:
        return cls(
            docstring=body["docstring"],
            lines=body["lines"],
            definitions=[Definition(*d) for d in body["definitions"]],
            imports=[Import(*i) for i in body["imports"]],
            calls=[Call(*c) for c in body["calls"]],
            error=body["error"],
            mentions=body["mentions"],
        )


def _span(node: ast.AST) -> list[int]:
    line = getattr(node, "lineno", 1)
    return [line, getattr(node, "col_offset", 0), getattr(node, "end_lineno", None) or line, getattr(node, "end_col_offset", None) or 0]


def dotted(expr: ast.expr) -> str:
    """`a.b.c` for a Name/Attribute chain, "" for anything else (a call result, a subscript)."""
    parts: list[str] = []
    while isinstance(expr, ast.Attribute):
        parts.append(expr.attr)
        expr = expr.value
    if not isinstance(expr, ast.Name):
        return ""
    parts.append(expr.id)
    return ".".join(reversed(parts))


def _signature(node: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    returns = f" -> {ast.unparse(node.returns)}" if node.returns else ""
    return f"({ast.unparse(node.args)}){returns}"


def is_test_file(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return name.startswith("test_") or name.endswith("_test.py") or name == "conftest.py"


def _function_kind(name: str, scope: tuple[tuple[str, str], ...], test_file: bool) -> str:
    if test_file and name.startswith("test"):
        return "test"
    return "method" if scope and scope[-1][0] == "class" else "function"


def _walk(tree: ast.Module, test_file: bool, out: Extraction) -> None:
    """Pre-order walk with the enclosing definitions as scope; iterative, so deep nesting cannot exhaust the stack."""
    stack: list[tuple[ast.AST, tuple[tuple[str, str], ...]]] = [(child, ()) for child in reversed(tree.body)]
    while stack:
        node, scope = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            qualname = ".".join([n for _, n in scope] + [node.name])
            docstring = ast.get_docstring(node) or ""
            outside: list[ast.AST] = list(node.decorator_list)
            if isinstance(node, ast.ClassDef):
                bases = [b for b in (dotted(base) for base in node.bases) if b]
                out.definitions.append(Definition("class", qualname, _span(node), docstring, bases=bases))
                inner = (*scope, ("class", node.name))
            else:
                kind = _function_kind(node.name, scope, test_file)
                out.definitions.append(Definition(kind, qualname, _span(node), docstring, signature=_signature(node),
                                                  is_async=isinstance(node, ast.AsyncFunctionDef)))
                inner = (*scope, ("function", node.name))
                outside.append(node.args)
            # Decorators and defaults run in the enclosing scope; only the body belongs to the definition.
            items = [(child, inner) for child in node.body] + [(part, scope) for part in outside]
            stack.extend(reversed(items))
            continue
        if isinstance(node, ast.Import):
            out.imports += [Import(alias.name, "", alias.asname or "", 0, _span(node)) for alias in node.names]
            continue
        if isinstance(node, ast.ImportFrom):
            out.imports += [Import(node.module or "", a.name, a.asname or "", node.level, _span(node)) for a in node.names]
            continue
        if isinstance(node, ast.Call) and (callee := dotted(node.func)):
            out.calls.append(Call(".".join(n for _, n in scope), callee, _span(node)))
        stack.extend((child, scope) for child in reversed(list(ast.iter_child_nodes(node))))


def extract(source: str, path: str) -> Extraction:
    """Reads one file's text; a syntax error gives an extraction with `error` set and nothing else."""
    lines = source.count("\n") + (1 if source and not source.endswith("\n") else 0)
    try:
        tree = ast.parse(source, filename=path)
    except (SyntaxError, ValueError) as exc:
        return Extraction(lines=lines, error=f"{type(exc).__name__}: {exc}")
    out = Extraction(docstring=ast.get_docstring(tree) or "", lines=lines)
    _walk(tree, is_test_file(path), out)
    # Entities of the docstrings are found here, once per file content, and cached with the rest.
    texts = {"": out.docstring}
    for definition in out.definitions:  # a name defined twice keeps its first definition, as the graph does
        texts.setdefault(definition.qualname, definition.docstring)
    out.mentions = {name: [m.to_list() for m in mentions(text)] for name, text in texts.items() if text}
    return out
