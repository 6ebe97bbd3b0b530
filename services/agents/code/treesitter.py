"""JavaScript, TypeScript and Go through tree-sitter's per-language wheels: complexity per function, security sinks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from services.agents.base import FileSpan, Finding
from services.agents.code.python_file import CC_SEVERITY, FunctionMetrics

LANGUAGES = {".js": "javascript", ".mjs": "javascript", ".cjs": "javascript", ".jsx": "javascript",
             ".ts": "typescript", ".mts": "typescript", ".cts": "typescript", ".tsx": "tsx", ".go": "go"}

_JS_FUNCTIONS = {"function_declaration", "function_expression", "arrow_function", "method_definition",
                 "generator_function_declaration", "generator_function", "function"}
_JS_BRANCHES = {"if_statement", "for_statement", "for_in_statement", "while_statement", "do_statement",
                "catch_clause", "ternary_expression", "switch_case"}
_GO_FUNCTIONS = {"function_declaration", "method_declaration", "func_literal"}
_GO_BRANCHES = {"if_statement", "for_statement", "expression_case", "type_case", "communication_case"}
_LOGICAL = {"&&", "||", "??"}
_SQL_METHODS = {"Query", "QueryRow", "Exec", "QueryContext", "QueryRowContext", "ExecContext", "Prepare"}

_parsers: dict[str, Any] = {}


@dataclass
class TreeFileResult:
    findings: list[Finding] = field(default_factory=list)
    functions: list[FunctionMetrics] = field(default_factory=list)
    parsed: bool = True


def parser(language: str) -> Any:
    """The tree-sitter parser of "javascript", "typescript", "tsx" or "go", made once per process (the Knowledge
    Builder reads the same languages with it)."""
    if language not in _parsers:
        from tree_sitter import Language, Parser

        if language == "javascript":
            import tree_sitter_javascript as grammar

            capsule = grammar.language()
        elif language in ("typescript", "tsx"):
            import tree_sitter_typescript as ts_grammar

            capsule = ts_grammar.language_typescript() if language == "typescript" else ts_grammar.language_tsx()
        else:
            import tree_sitter_go as go_grammar

            capsule = go_grammar.language()
        _parsers[language] = Parser(Language(capsule))
    return _parsers[language]


def _walk(node: Any) -> Any:
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(current.children))


def _text(node: Any) -> str:
    return node.text.decode("utf-8", "replace") if node is not None and node.text is not None else ""


def _string_literal(node: Any, language: str) -> bool:
    """A constant string: a plain literal, or a template without substitutions."""
    if language == "go":
        return node.type in ("interpreted_string_literal", "raw_string_literal")
    if node.type == "string":
        return True
    return node.type == "template_string" and not any(c.type == "template_substitution" for c in node.children)


def _built_string(node: Any) -> bool:
    return (node.type == "template_string" and any(c.type == "template_substitution" for c in node.children)) or (
        node.type == "binary_expression" and any(c.type == "+" for c in node.children)
    )


def _complexity(function: Any, functions: set[str], branches: set[str]) -> int:
    score = 1
    stack = list(function.children)
    while stack:
        node = stack.pop()
        if node.type in functions:
            continue  # a nested function has its own score
        if node.type in branches:
            # `default:` is a switch_case without a value in JavaScript; it adds no path.
            if not (node.type == "switch_case" and node.child_by_field_name("value") is None):
                score += 1
        elif node.type == "binary_expression" and any(c.type in _LOGICAL for c in node.children):
            score += 1
        stack.extend(node.children)
    return score


def _function_name(node: Any) -> str:
    name = node.child_by_field_name("name")
    if name is not None:
        return _text(name)
    parent = node.parent
    if parent is not None and parent.type in ("variable_declarator", "pair", "assignment_expression"):
        target = parent.child_by_field_name("name") or parent.child_by_field_name("key") or parent.child_by_field_name("left")
        if target is not None:
            return _text(target)
    return "<anonymous>"


class _Collector:
    def __init__(self, path: str, tool: str) -> None:
        self.path, self.tool = path, tool
        self.findings: list[Finding] = []

    def add(self, node: Any, rule: str, severity: str, cwe: int, message: str, hint: str, lines: list[str]) -> None:
        row, col = node.start_point
        end_row, end_col = node.end_point
        snippet = lines[row].strip() if row < len(lines) else ""
        self.findings.append(
            Finding(rule, self.tool, severity, message, FileSpan(self.path, row + 1, col, end_row + 1, end_col),
                    category="security", confidence="medium" if severity != "high" else "high", cwe=cwe,
                    fix_hint=hint, snippet=snippet)
        )


def _child_process_names(root: Any) -> tuple[set[str], set[str]]:
    """Names bound to the child_process module, and exec functions imported from it by name."""
    modules: set[str] = set()
    functions: set[str] = set()
    for node in _walk(root):
        if node.type == "variable_declarator":
            value = node.child_by_field_name("value")
            if value is not None and value.type == "call_expression" and _text(value.child_by_field_name("function")) == "require":
                argument = value.child_by_field_name("arguments")
                if argument is not None and "child_process" in _text(argument):
                    target = node.child_by_field_name("name")
                    if target is not None and target.type == "identifier":
                        modules.add(_text(target))
                    elif target is not None:
                        functions.update(_text(n) for n in _walk(target) if n.type in ("shorthand_property_identifier_pattern", "identifier"))
        elif node.type == "import_statement" and "child_process" in _text(node.child_by_field_name("source")):
            for part in _walk(node):
                if part.type == "namespace_import" or (part.type == "identifier" and part.parent is not None and part.parent.type == "import_clause"):
                    modules.update(_text(n) for n in _walk(part) if n.type == "identifier")
                elif part.type == "import_specifier":
                    alias = part.child_by_field_name("alias") or part.child_by_field_name("name")
                    functions.add(_text(alias))
    return modules, functions


def _javascript(root: Any, out: _Collector, lines: list[str], language: str) -> None:
    modules, exec_functions = _child_process_names(root)
    for node in _walk(root):
        kind = node.type
        if kind == "call_expression":
            function = node.child_by_field_name("function")
            arguments = node.child_by_field_name("arguments")
            first = next((c for c in arguments.named_children), None) if arguments is not None else None
            name = _text(function)
            if name in ("eval", "window.eval", "globalThis.eval"):
                out.add(node, "js/eval", "high", 95, "eval() runs a string as code", "Parse data with JSON.parse; never evaluate strings.", lines)
            elif name in ("document.write", "document.writeln"):
                out.add(node, "js/document-write", "medium", 79, f"{name}() writes raw HTML into the page",
                        "Build DOM nodes and set textContent instead.", lines)
            elif function is not None and function.type == "member_expression" and _text(function.child_by_field_name("property")) == "insertAdjacentHTML":
                out.add(node, "js/inner-html", "medium", 79, "insertAdjacentHTML() inserts raw HTML", "Insert text nodes or sanitise the HTML.", lines)
            elif first is not None and not _string_literal(first, language) and (
                name in {f"{m}.{f}" for m in modules for f in ("exec", "execSync")} or name in exec_functions & {"exec", "execSync"}
            ):
                built = _built_string(first)
                out.add(node, "js/child-process-exec", "high" if built else "medium", 78,
                        f"{name}() runs a {'built string' if built else 'non-constant command'} through the shell",
                        "Use execFile/spawn with an argument array, without a shell.", lines)
        elif kind == "new_expression" and _text(node.child_by_field_name("constructor")) == "Function":
            out.add(node, "js/new-function", "high", 95, "new Function() compiles a string as code", "Do not build code from strings.", lines)
        elif kind in ("assignment_expression", "augmented_assignment_expression"):
            left = node.child_by_field_name("left")
            if left is not None and left.type == "member_expression":
                prop = _text(left.child_by_field_name("property"))
                if prop in ("innerHTML", "outerHTML"):
                    out.add(node, "js/inner-html", "medium", 79, f"assignment to {prop} inserts raw HTML",
                            "Set textContent, or sanitise the HTML first.", lines)


def _go(root: Any, out: _Collector, lines: list[str]) -> None:
    for node in _walk(root):
        if node.type == "call_expression":
            function = node.child_by_field_name("function")
            name = _text(function)
            arguments = node.child_by_field_name("arguments")
            args = list(arguments.named_children) if arguments is not None else []
            if name in ("exec.Command", "exec.CommandContext"):
                command_args = args[1:] if name == "exec.CommandContext" else args
                if any(not _string_literal(a, "go") for a in command_args):
                    out.add(node, "go/command-injection", "high", 78, f"{name}() with a command built at run time",
                            "Pass a fixed program and validated arguments; never run `sh -c` on input.", lines)
            elif name in ("md5.New", "md5.Sum", "sha1.New", "sha1.Sum"):
                out.add(node, "go/weak-hash", "medium", 328, f"{name}() is a broken hash for security use",
                        "Use crypto/sha256 (or bcrypt/argon2 for passwords).", lines)
            elif function is not None and function.type == "selector_expression" and _text(function.child_by_field_name("field")) in _SQL_METHODS:
                query = args[1] if _text(function.child_by_field_name("field")).endswith("Context") and len(args) > 1 else (args[0] if args else None)
                if query is not None and (
                    (query.type == "call_expression" and _text(query.child_by_field_name("function")) == "fmt.Sprintf")
                    or (query.type == "binary_expression" and any(c.type == "+" for c in query.children))
                ):
                    out.add(node, "go/sql-format", "high", 89, "SQL built from strings at run time",
                            "Use placeholders ($1, ?) and pass values as arguments.", lines)
        elif node.type == "keyed_element":
            parts = node.named_children
            if len(parts) == 2 and _text(parts[0]) == "InsecureSkipVerify" and _text(parts[1]) == "true":
                out.add(node, "go/tls-insecure-skip-verify", "high", 295, "TLS certificate checks are turned off",
                        "Remove InsecureSkipVerify; trust the right CA instead.", lines)


def analyze_tree(path: str, data: bytes, language: str) -> TreeFileResult:
    """Parse one file (never run it) and report its functions' complexity and its security sinks."""
    tree = parser(language).parse(data)
    lines = data.decode("utf-8", "replace").splitlines()
    result = TreeFileResult(parsed=not tree.root_node.has_error)
    out = _Collector(path, "tree-sitter")
    functions, branches = (_GO_FUNCTIONS, _GO_BRANCHES) if language == "go" else (_JS_FUNCTIONS, _JS_BRANCHES)
    from radon.complexity import cc_rank

    for node in _walk(tree.root_node):
        if node.type in functions:
            score = _complexity(node, functions, branches)
            name = _function_name(node)
            rank = cc_rank(score)
            result.functions.append(FunctionMetrics(name, node.start_point[0] + 1, score, rank, 0.0, ""))
            if rank in CC_SEVERITY:
                row, col = node.start_point
                result.findings.append(
                    Finding("CC", "tree-sitter", CC_SEVERITY[rank], f"{name} has cyclomatic complexity {score} (rank {rank})",
                            FileSpan(path, row + 1, col, node.end_point[0] + 1, node.end_point[1]), category="complexity",
                            fix_hint="Split the function into smaller ones.",
                            snippet=lines[row].strip() if row < len(lines) else "")
                )
    if language == "go":
        _go(tree.root_node, out, lines)
    else:
        _javascript(tree.root_node, out, lines, language)
    result.findings.extend(out.findings)
    return result
