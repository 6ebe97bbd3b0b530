"""What one Python file holds, read with the ast module (the code is never imported): definitions, imports, calls.

The result names things only as the file itself does; the builder resolves names across files afterwards, so an
unchanged file's extraction can be reused as it is."""

from __future__ import annotations

import ast
from dataclasses import asdict, dataclass, field
from typing import Any

_Def = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef


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
    """Everything the builder needs from one file; JSON-serialisable so it can be cached by content hash."""

    docstring: str = ""
    lines: int = 0
    definitions: list[Definition] = field(default_factory=list)
    imports: list[Import] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    error: str = ""  # a syntax error: the file is a module node with nothing inside

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Extraction:
        return cls(
            docstring=body["docstring"],
            lines=body["lines"],
            definitions=[Definition(**d) for d in body["definitions"]],
            imports=[Import(**i) for i in body["imports"]],
            calls=[Call(**c) for c in body["calls"]],
            error=body["error"],
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


class _Visitor(ast.NodeVisitor):
    def __init__(self, test_file: bool) -> None:
        self.test_file = test_file
        self.out = Extraction()
        self.scope: list[tuple[str, str]] = []  # (kind, name) of enclosing definitions

    def _qualname(self, name: str) -> str:
        return ".".join([n for _, n in self.scope] + [name])

    def _function_kind(self, name: str) -> str:
        in_class = bool(self.scope) and self.scope[-1][0] == "class"
        if self.test_file and name.startswith("test"):
            return "test"
        return "method" if in_class else "function"

    def _define(self, node: _Def, kind: str, **extra: Any) -> None:
        self.out.definitions.append(
            Definition(kind=kind, qualname=self._qualname(node.name), span=_span(node), docstring=ast.get_docstring(node) or "", **extra)
        )
        self.scope.append(("class" if kind == "class" else "function", node.name))
        # Decorators and defaults run in the enclosing scope; only the body belongs to the definition.
        for child in node.body:
            self.visit(child)
        self.scope.pop()
        outer = self.scope[:]
        outside: list[ast.AST] = [*node.decorator_list, *([] if isinstance(node, ast.ClassDef) else [node.args])]
        for part in outside:
            self.scope = outer
            self.visit(part)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        bases = [b for b in (dotted(base) for base in node.bases) if b]
        self._define(node, "class", bases=bases)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._define(node, self._function_kind(node.name), signature=_signature(node))

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self._define(node, self._function_kind(node.name), signature=_signature(node), is_async=True)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.out.imports.append(Import(alias.name, "", alias.asname or "", 0, _span(node)))

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for alias in node.names:
            self.out.imports.append(Import(node.module or "", alias.name, alias.asname or "", node.level, _span(node)))

    def visit_Call(self, node: ast.Call) -> None:
        callee = dotted(node.func)
        if callee:
            caller = ".".join(n for _, n in self.scope)
            self.out.calls.append(Call(caller, callee, _span(node)))
        self.generic_visit(node)


def extract(source: str, path: str) -> Extraction:
    """Reads one file's text; a syntax error gives an extraction with `error` set and nothing else."""
    lines = source.count("\n") + (1 if source and not source.endswith("\n") else 0)
    try:
        tree = ast.parse(source, filename=path)
    except (SyntaxError, ValueError) as exc:
        return Extraction(lines=lines, error=f"{type(exc).__name__}: {exc}")
    visitor = _Visitor(is_test_file(path))
    visitor.visit(tree)
    visitor.out.docstring = ast.get_docstring(tree) or ""
    visitor.out.lines = lines
    return visitor.out
