"""What one JavaScript, TypeScript or Go file holds, read with tree-sitter's per-language wheels (offline)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from services.agents.code.treesitter import LANGUAGES, parser
from services.agents.knowledge.python_source import Call, Definition, Extraction, Import


def language_of(path: str) -> str:
    """"javascript", "typescript", "tsx" or "go" by the file's suffix; "" for anything else."""
    dot = path.rfind(".")
    return LANGUAGES.get(path[dot:].lower(), "") if dot > path.rfind("/") else ""


def _span(node: Any) -> list[int]:
    return [node.start_point[0] + 1, node.start_point[1], node.end_point[0] + 1, node.end_point[1]]


def _text(node: Any) -> str:
    return bytes(node.text).decode("utf-8", "replace") if node is not None else ""


def _dotted(node: Any) -> str:
    """`a.b.c` for identifiers and member/selector chains; "" for anything else."""
    if node.type in ("identifier", "property_identifier", "field_identifier", "package_identifier", "this", "type_identifier"):
        return _text(node)
    if node.type in ("member_expression", "selector_expression"):
        left = node.child_by_field_name("object") or node.child_by_field_name("operand")
        right = node.child_by_field_name("property") or node.child_by_field_name("field")
        head = _dotted(left) if left is not None else ""
        return f"{head}.{_text(right)}" if head and right is not None else ""
    return ""


def _string(node: Any) -> str:
    return _text(node)[1:-1] if node is not None and node.type in ("string", "interpreted_string_literal", "raw_string_literal") else ""


class _Reader:
    def __init__(self, path: str, language: str) -> None:
        self.path = path
        self.language = language
        self.out = Extraction()

    def define(self, kind: str, qualname: str, node: Any, signature: str = "", bases: list[str] | None = None) -> str:
        self.out.definitions.append(Definition(kind, qualname, _span(node), "", bases or [], signature))
        return qualname

    def read(self, root: Any) -> Extraction:
        stack: list[tuple[Any, str, str]] = [(root, "", "")]  # node, enclosing definition, enclosing class
        while stack:
            node, scope, cls = stack.pop()
            scope, cls = self.visit(node, scope, cls)
            stack.extend((child, scope, cls) for child in reversed(node.named_children))
        return self.out

    def visit(self, node: Any, scope: str, cls: str) -> tuple[str, str]:
        return (self.go if self.language == "go" else self.javascript)(node, scope, cls)

    def javascript(self, node: Any, scope: str, cls: str) -> tuple[str, str]:
        kind = node.type
        name = node.child_by_field_name("name")
        if kind in ("function_declaration", "generator_function_declaration") and name is not None and not scope:
            params = node.child_by_field_name("parameters")
            return self.define("function", _text(name), node, _text(params)), ""
        if kind in ("class_declaration", "abstract_class_declaration", "class") and name is not None and not scope:
            bases = [d for h in node.named_children if h.type == "class_heritage" for d in self._heritage(h)]
            return self.define("class", _text(name), node, bases=bases), _text(name)
        if kind == "method_definition" and cls and name is not None and scope == cls:
            params = node.child_by_field_name("parameters")
            return self.define("method", f"{cls}.{_text(name)}", node, _text(params)), cls
        if kind == "variable_declarator" and not scope and name is not None and name.type == "identifier":
            value = node.child_by_field_name("value")
            if value is not None and value.type in ("arrow_function", "function_expression", "function"):
                params = value.child_by_field_name("parameters")
                return self.define("function", _text(name), node, _text(params) if params is not None else ""), ""
            if value is not None and value.type == "call_expression" and _dotted(value.child_by_field_name("function")) == "require":
                arguments = value.child_by_field_name("arguments")
                module = _string(arguments.named_children[0]) if arguments is not None and arguments.named_children else ""
                if module:
                    self.out.imports.append(Import(module, "", _text(name), 0, _span(node)))
        if kind == "import_statement":
            self._import(node)
        elif kind in ("call_expression", "new_expression"):
            target = node.child_by_field_name("function") or node.child_by_field_name("constructor")
            callee = _dotted(target) if target is not None else ""
            if callee and callee != "require":
                self.out.calls.append(Call(scope, callee, _span(node)))
        return scope, cls

    def _heritage(self, heritage: Any) -> list[str]:
        found = []
        for child in heritage.named_children:
            if child.type == "extends_clause":
                found += [_dotted(v) for v in child.named_children if _dotted(v)]
            elif _dotted(child):
                found.append(_dotted(child))
        return found

    def _import(self, node: Any) -> None:
        module = _string(node.child_by_field_name("source"))
        if not module:
            return
        clause = next((c for c in node.named_children if c.type == "import_clause"), None)
        if clause is None:
            self.out.imports.append(Import(module, "", "", 0, _span(node)))
            return
        for part in clause.named_children:
            if part.type == "identifier":
                self.out.imports.append(Import(module, "default", _text(part), 0, _span(node)))
            elif part.type == "namespace_import":
                alias = next((_text(c) for c in part.named_children if c.type == "identifier"), "")
                self.out.imports.append(Import(module, "", alias, 0, _span(node)))
            elif part.type == "named_imports":
                for spec in part.named_children:
                    if spec.type == "import_specifier":
                        original = spec.child_by_field_name("name")
                        alias = spec.child_by_field_name("alias")
                        self.out.imports.append(Import(module, _text(original), _text(alias), 0, _span(node)))

    def go(self, node: Any, scope: str, cls: str) -> tuple[str, str]:
        kind = node.type
        if kind == "function_declaration":
            name = _text(node.child_by_field_name("name"))
            test = self.path.endswith("_test.go") and name.startswith(("Test", "Benchmark", "Example", "Fuzz"))
            return self.define("test" if test else "function", name, node, _text(node.child_by_field_name("parameters"))), ""
        if kind == "method_declaration":
            receiver = node.child_by_field_name("receiver")
            types = [c for c in _descendants(receiver) if c.type == "type_identifier"] if receiver is not None else []
            owner = _text(types[0]) if types else ""
            name = _text(node.child_by_field_name("name"))
            qualname = f"{owner}.{name}" if owner else name
            return self.define("method", qualname, node, _text(node.child_by_field_name("parameters"))), owner
        if kind == "type_spec" and not scope:
            body = node.child_by_field_name("type")
            if body is not None and body.type in ("struct_type", "interface_type"):
                embedded = [_text(t) for f in _descendants(body) if f.type == "field_declaration"
                            and f.child_by_field_name("name") is None for t in f.named_children if t.type == "type_identifier"]
                self.define("class", _text(node.child_by_field_name("name")), node, bases=embedded)
        elif kind == "import_spec":
            path = _string(node.child_by_field_name("path"))
            alias = _text(node.child_by_field_name("name"))
            if path:
                self.out.imports.append(Import(path, "", alias, 0, _span(node)))
        elif kind == "call_expression":
            callee = _dotted(node.child_by_field_name("function"))
            if callee:
                self.out.calls.append(Call(scope, callee, _span(node)))
        return scope, cls


def _descendants(node: Any) -> Iterator[Any]:
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(current.named_children))


def extract(source: str, path: str, language: str) -> Extraction:
    """One file's definitions, imports and calls; `error` is set when tree-sitter had to recover from syntax errors
    (what it could read is kept)."""
    data = source.encode("utf-8")
    tree = parser(language).parse(data)
    out = _Reader(path, language).read(tree.root_node)
    out.lines = source.count("\n") + (1 if source and not source.endswith("\n") else 0)
    if tree.root_node.has_error:
        out.error = "SyntaxError: tree-sitter recovered from errors in this file"
    return out
