"""Static analysis of Python sources using the standard ast module."""

from __future__ import annotations

import ast
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.agents.base import SEVERITIES, AgentSpec, Artifact, FileSpan, Finding, RunContext, RunResult
from services.runtime.file_walk import count_lines, read_file_capped, walk_files
from services.runtime.workspace import path_input_schema

TOOL = "mcpmesh-ast"
COMPLEXITY_LIMIT = 10
FUNCTION_LENGTH_LIMIT = 80
CREDENTIAL_MARKERS: tuple[str, ...] = ("password", "secret", "token", "api_key")
MUTABLE_FACTORIES: frozenset[str] = frozenset({"list", "dict", "set"})
DYNAMIC_EXEC: frozenset[str] = frozenset({"eval", "exec", "builtins.eval", "builtins.exec"})

_FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef


@dataclass(frozen=True)
class CodeStats:
    """Aggregate counters for an analysis run."""

    files_analyzed: int
    files_skipped: int
    lines: int
    functions: int
    classes: int


@dataclass(frozen=True)
class CodeAnalysis:
    """Result of analysing a directory tree."""

    findings: tuple[Finding, ...]
    stats: CodeStats
    truncated: bool


def _sort_key(finding: Finding) -> tuple[str, int, int, str, str]:
    return finding.sort_key()


def _finding(rule_id: str, severity: str, category: str, message: str, file: str, line: int, column: int) -> Finding:
    return Finding(rule_id, TOOL, severity, message, FileSpan(file, line, column), category=category)


def _import_aliases(tree: ast.AST) -> dict[str, str]:
    """Map local names to the dotted names they were imported as (scope-insensitive)."""
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    aliases[alias.asname] = alias.name
                else:
                    top = alias.name.split(".")[0]
                    aliases[top] = top
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return aliases


def _qualified_name(func: ast.expr, aliases: dict[str, str]) -> str | None:
    parts: list[str] = []
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if not isinstance(func, ast.Name):
        return None
    parts.append(aliases.get(func.id, func.id))
    return ".".join(reversed(parts))


def _complexity(function: _FunctionNode) -> int:
    """Cyclomatic complexity of a function body, excluding nested function definitions."""
    score = 1
    # Iterative traversal: deeply nested code must not exhaust the interpreter stack.
    stack: list[ast.AST] = list(function.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        if isinstance(node, (ast.If, ast.For, ast.AsyncFor, ast.While, ast.ExceptHandler, ast.IfExp, ast.match_case)):
            score += 1
        elif isinstance(node, ast.comprehension):
            score += len(node.ifs)
        elif isinstance(node, ast.BoolOp):
            score += len(node.values) - 1
        stack.extend(ast.iter_child_nodes(node))
    return score


def _is_mutable_default(node: ast.expr) -> bool:
    if isinstance(node, (ast.List, ast.Dict, ast.Set, ast.ListComp, ast.DictComp, ast.SetComp)):
        return True
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in MUTABLE_FACTORIES


def _defaults_with_names(args: ast.arguments) -> list[tuple[str, ast.expr]]:
    positional = args.posonlyargs + args.args
    # Positional defaults align with the last parameters; keyword-only defaults use None for "no default".
    paired = list(zip((arg.arg for arg in positional[len(positional) - len(args.defaults) :]), args.defaults))
    paired.extend((arg.arg, default) for arg, default in zip(args.kwonlyargs, args.kw_defaults) if default is not None)
    return paired


def _assigned_name(target: ast.expr) -> str | None:
    if isinstance(target, ast.Name):
        return target.id
    if isinstance(target, ast.Attribute):
        return target.attr
    return None


def _is_credential_name(name: str) -> bool:
    lowered = name.lower()
    return any(marker in lowered for marker in CREDENTIAL_MARKERS)


def _shell_true(call: ast.Call) -> bool:
    return any(
        kw.arg == "shell" and isinstance(kw.value, ast.Constant) and bool(kw.value.value) for kw in call.keywords
    )


class _Collector:
    """Accumulates findings for one file."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.findings: list[Finding] = []

    def add(self, rule_id: str, severity: str, category: str, message: str, node: ast.AST) -> None:
        line = getattr(node, "lineno", 1)
        column = getattr(node, "col_offset", 0)
        self.findings.append(_finding(rule_id, severity, category, message, self.file, line, column))


def _check_function(node: _FunctionNode, out: _Collector) -> None:
    for param, default in _defaults_with_names(node.args):
        if _is_mutable_default(default):
            out.add(
                "PY003",
                "medium",
                "quality",
                f"function '{node.name}' uses a mutable default for parameter '{param}'",
                default,
            )
    complexity = _complexity(node)
    if complexity > COMPLEXITY_LIMIT:
        out.add(
            "PY004",
            "medium",
            "complexity",
            f"function '{node.name}' has cyclomatic complexity {complexity} (limit {COMPLEXITY_LIMIT})",
            node,
        )
    length = (node.end_lineno or node.lineno) - node.lineno + 1
    if length > FUNCTION_LENGTH_LIMIT:
        out.add(
            "PY008",
            "low",
            "quality",
            f"function '{node.name}' is {length} lines long (limit {FUNCTION_LENGTH_LIMIT})",
            node,
        )


def _check_call(node: ast.Call, aliases: dict[str, str], out: _Collector) -> None:
    name = _qualified_name(node.func, aliases)
    if name is None:
        return
    if name in DYNAMIC_EXEC:
        out.add("PY002", "high", "security", f"call to {name}() executes dynamic code", node)
    elif name == "os.system":
        out.add("PY005", "high", "security", "os.system() runs a command through the shell", node)
    elif name.startswith("subprocess.") and _shell_true(node):
        out.add("PY005", "high", "security", f"{name}() called with shell=True", node)


def _check_credentials(node: ast.Assign | ast.AnnAssign, out: _Collector) -> None:
    value = node.value
    if not (isinstance(value, ast.Constant) and isinstance(value.value, str) and value.value):
        return
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    for target in targets:
        name = _assigned_name(target)
        if name is not None and _is_credential_name(name):
            out.add("PY007", "medium", "security", f"hard-coded credential assigned to '{name}'", target)


def _parse(source: str, file: str) -> ast.Module | Finding:
    """Parse source, or return the PY006 finding explaining why it cannot be parsed."""
    try:
        # A leading BOM is legal in a file but rejected by ast.parse when given a str.
        return ast.parse(source.removeprefix("\ufeff"), filename=file)
    except SyntaxError as exc:
        column = max((exc.offset or 1) - 1, 0)
        return _finding("PY006", "high", "syntax", f"cannot parse: {exc.msg}", file, exc.lineno or 1, column)
    except (ValueError, RecursionError, MemoryError) as exc:
        # Null bytes (ValueError on 3.11) and pathological nesting are unparsable, not fatal.
        reason = str(exc) or type(exc).__name__
        return _finding("PY006", "high", "syntax", f"cannot parse: {reason}", file, 1, 0)


def analyze_source(source: str, file: str) -> tuple[list[Finding], int, int]:
    """Analyse one Python source; return (sorted findings, function count, class count)."""
    tree = _parse(source, file)
    if isinstance(tree, Finding):
        return [tree], 0, 0
    out = _Collector(file)
    aliases = _import_aliases(tree)
    functions = 0
    classes = 0
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            functions += 1
            _check_function(node, out)
        elif isinstance(node, ast.ClassDef):
            classes += 1
        elif isinstance(node, ast.ExceptHandler) and node.type is None:
            out.add("PY001", "medium", "quality", "bare 'except:' also catches SystemExit and KeyboardInterrupt", node)
        elif isinstance(node, ast.Call):
            _check_call(node, aliases, out)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            _check_credentials(node, out)
    return sorted(out.findings, key=_sort_key), functions, classes


def analyze_path(root: Path, *, max_files: int = 5000, max_file_bytes: int = 1_000_000) -> CodeAnalysis:
    """Analyse every *.py file under root (symlinks and vendored/build directories are skipped)."""
    paths, truncated = walk_files(root, max_files=max_files)
    findings: list[Finding] = []
    analyzed = skipped = lines = functions = classes = 0
    for path in paths:
        if path.suffix != ".py":
            continue
        try:
            _, data = read_file_capped(path, max_file_bytes)
        except OSError:
            skipped += 1
            continue
        if data is None:
            skipped += 1
            continue
        try:
            # utf-8-sig tolerates a BOM, which ast.parse would otherwise reject in a str.
            source = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            skipped += 1
            continue
        file_findings, file_functions, file_classes = analyze_source(source, path.relative_to(root).as_posix())
        findings.extend(file_findings)
        analyzed += 1
        lines += count_lines(data)
        functions += file_functions
        classes += file_classes
    stats = CodeStats(
        files_analyzed=analyzed, files_skipped=skipped, lines=lines, functions=functions, classes=classes
    )
    return CodeAnalysis(findings=tuple(sorted(findings, key=_sort_key)), stats=stats, truncated=truncated)


def _summary(analysis: CodeAnalysis) -> str:
    stats = analysis.stats
    by_severity = Counter(f.severity for f in analysis.findings)
    counts = ", ".join(f"{by_severity[s]} {s}" for s in SEVERITIES if by_severity[s])
    return (
        f"Analysed {stats.files_analyzed} Python files ({stats.lines} lines, {stats.functions} functions, "
        f"{stats.classes} classes): {len(analysis.findings)} findings" + (f" ({counts})." if counts else ".")
    )


def _report(analysis: CodeAnalysis, summary: str) -> str:
    lines = ["# Code analysis", "", summary, "", "| rule | severity | where | message |", "|---|---|---|---|"]
    lines += [f"| {f.rule_id} | {f.severity} | {f.file}:{f.line} | {f.message} |" for f in analysis.findings]
    return "\n".join(lines) + "\n"


def run(arguments: dict[str, Any], context: RunContext) -> RunResult:
    root = context.folder(arguments)
    analysis = analyze_path(root, max_files=context.limits.max_files, max_file_bytes=context.limits.max_file_bytes)
    summary = _summary(analysis)
    stats = analysis.stats
    return RunResult(
        findings=list(analysis.findings),
        artifacts=[Artifact("report.md", "text/markdown", _report(analysis, summary))],
        metrics={"functions": stats.functions, "classes": stats.classes, "findings": len(analysis.findings)},
        summary=summary,
        files_analyzed=stats.files_analyzed,
        files_skipped=stats.files_skipped,
        lines_analyzed=stats.lines,
        llm_status=context.model_status,
        truncated=analysis.truncated,
    )


SPEC = AgentSpec(
    name="code-analyzer",
    display_name="Code Analyzer",
    description="Static analysis and security scan of Python code: quality, complexity and security findings "
    "per file and line.",
    parameters=path_input_schema(),
    run=run,
    capabilities=("python", "security", "quality", "complexity"),
)
