"""One Python file through bandit (every default plugin) and radon (complexity and maintainability with ranks).

Runs in a worker process; the code is parsed, never imported or run."""

from __future__ import annotations

import ast
import bisect
import io
import logging
from dataclasses import dataclass, field
from typing import Any

from services.agents.base import FileSpan, Finding

CC_SEVERITY = {"C": "low", "D": "medium", "E": "high", "F": "high"}  # ranks A and B are not findings
MI_SEVERITY = {"C": "low"}  # MI rank C: 9 or less, hard to maintain
BANDIT_LEVEL = {"LOW": "low", "MEDIUM": "medium", "HIGH": "high", "UNDEFINED": "low"}

_bandit_manager: Any = None


@dataclass
class FunctionMetrics:
    name: str  # "Class.method" or "function"
    line: int
    complexity: int
    complexity_rank: str
    maintainability: float
    maintainability_rank: str


@dataclass
class PythonFileResult:
    findings: list[Finding] = field(default_factory=list)
    functions: list[FunctionMetrics] = field(default_factory=list)
    classes: int = 0
    maintainability: float = 100.0
    maintainability_rank: str = "A"
    parsed: bool = True


def _bandit() -> Any:
    global _bandit_manager
    if _bandit_manager is None:
        logging.getLogger("bandit").setLevel(logging.CRITICAL)  # its own "skipped file" logs; we report parse errors
        logging.getLogger("stevedore.extension").setLevel(logging.CRITICAL)  # bandit's optional SARIF formatter
        from bandit.core import config, manager, node_visitor

        class TreeVisitor(node_visitor.BanditNodeVisitor):
            """bandit's visitor on a tree parsed once for bandit and radon (BanditNodeVisitor.process otherwise
            parses the same bytes again); the rest of process() is bandit's own."""

            tree: ast.Module | None = None

            def process(self, data: bytes) -> Any:
                if self.tree is None:
                    return super().process(data)
                self.generic_visit(self.tree)
                self.context = {"file_data": self.fdata, "filename": self.fname, "lineno": 0, "linerange": [0, 1], "col_offset": 0}
                self.update_scores(self.tester.run_tests(self.context, "File"))
                return self.scores

        class TreeManager(manager.BanditManager):
            tree: ast.Module | None = None

            def _parse_file(self, fname: str, fdata: Any, new_files_list: list[str]) -> None:
                if self.tree is None or b"nosec" in fdata.getvalue():
                    return super()._parse_file(fname, fdata, new_files_list)
                # BanditManager._parse_file's steps, less tokenizing the file to find `# nosec` comments (pure
                # Python, a sixth of bandit's time): a file without the word has none, and bandit's own comment
                # pattern is case-sensitive.
                data = fdata.read()
                self.metrics.begin(fname)
                self.metrics.count_locs(data.splitlines())
                try:
                    score = self._execute_ast_visitor(fname, fdata, data, {})
                except Exception:  # as bandit does: a file its plugins fail on is skipped, not fatal
                    self.skipped.append((fname, "exception while scanning file"))
                    return None
                self.scores.append(score)
                self.metrics.count_issues([score])
                return None

            def _execute_ast_visitor(self, fname: str, fdata: Any, data: bytes, nosec_lines: Any) -> Any:
                visitor = TreeVisitor(fname, fdata, self.b_ma, self.b_ts, self.debug, nosec_lines, self.metrics)
                visitor.tree = self.tree
                score = visitor.process(data)
                self.results.extend(visitor.tester.results)
                return score

        # No profile: every test and blacklist plugin bandit ships, as its command line runs by default.
        _bandit_manager = TreeManager(config.BanditConfig(), "file", quiet=True)
    return _bandit_manager


def bandit_findings(path: str, data: bytes, tree: ast.Module | None = None) -> list[Finding]:
    """bandit's issues for one file's bytes. `# nosec` (bare or with test ids) is honoured by bandit itself."""
    from bandit.core import docs_utils

    manager = _bandit()
    manager.results, manager.skipped, manager.tree = [], [], tree
    # _parse_file is what BanditManager.run_tests calls per file; giving it the bytes we already read means the
    # content we hashed is the content bandit checks (no second read by name).
    manager._parse_file(path, io.BytesIO(data), [path])
    manager.tree = None
    lines = data.decode("utf-8", "replace").splitlines()
    found = []
    for issue in manager.results:
        end_line = max(issue.linerange) if issue.linerange else issue.lineno
        snippet = lines[issue.lineno - 1].strip() if 0 < issue.lineno <= len(lines) else ""
        found.append(
            Finding(
                rule_id=issue.test_id,
                tool="bandit",
                severity=BANDIT_LEVEL.get(issue.severity, "low"),
                confidence=BANDIT_LEVEL.get(issue.confidence, "low") if issue.confidence != "UNDEFINED" else "low",
                message=f"{issue.text} ({issue.test})",
                location=FileSpan(path, issue.lineno, issue.col_offset or 0, end_line, issue.end_col_offset or 0),
                category="security",
                cwe=int(issue.cwe.id or 0),
                fix_hint=f"See bandit's guidance for {issue.test_id}: {docs_utils.get_url(issue.test_id)}",
                snippet=snippet,
            )
        )
    return found


def _comment_lines(lines: list[str]) -> list[int]:
    """Prefix sums of comment-only lines, so any line range's count is one subtraction."""
    sums = [0]
    for line in lines:
        sums.append(sums[-1] + (1 if line.lstrip().startswith("#") else 0))
    return sums


def _docstring_lines(node: ast.AST) -> int:
    body = getattr(node, "body", None)
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
        first = body[0]
        return (first.end_lineno or first.lineno) - first.lineno + 1
    return 0


def radon_metrics(path: str, tree: ast.Module, lines: list[str]) -> PythonFileResult:
    """Cyclomatic complexity per function and the maintainability index (radon's formula) per function and file.

    radon's own raw counter tokenizes the file in pure Python, which costs more than all the rest together; the
    logical lines and comment lines its formula needs are taken from the AST and the lines instead."""
    from radon.complexity import cc_rank
    from radon.metrics import h_visit_ast, mi_compute, mi_rank
    from radon.visitors import ComplexityVisitor, Function

    result = PythonFileResult()
    visitor = ComplexityVisitor.from_ast(tree)
    halstead = h_visit_ast(tree)
    by_name = dict(halstead.functions)
    comments = _comment_lines(lines)
    nodes: dict[tuple[int, str], ast.FunctionDef | ast.AsyncFunctionDef] = {}
    statement_lines: list[int] = []  # the first line of every statement, one entry per statement
    for n in ast.walk(tree):  # one walk for all: walking each function again costs more than radon itself
        if isinstance(n, ast.stmt):
            statement_lines.append(n.lineno)
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef):
                nodes[(n.lineno, n.name)] = n
    statement_lines.sort()
    blocks: list[Function] = list(visitor.functions)
    for cls in visitor.classes:
        blocks.extend(cls.methods)
    result.classes = len(visitor.classes)
    for block in sorted(blocks, key=lambda b: b.lineno):
        node = nodes.get((block.lineno, block.name))
        end = block.endline or block.lineno
        # Logical lines: the statements that start inside the function, its `def` included.
        lloc = bisect.bisect_right(statement_lines, end) - bisect.bisect_left(statement_lines, block.lineno)
        comment_count = comments[end] - comments[block.lineno - 1] + (_docstring_lines(node) if node else 0)
        span = end - block.lineno + 1
        volume = by_name[block.name].volume if block.name in by_name else 0.0
        mi = mi_compute(volume, block.complexity, lloc, comment_count * 100.0 / span if span else 0.0)
        name = f"{block.classname}.{block.name}" if block.is_method else block.name
        metrics = FunctionMetrics(name, block.lineno, block.complexity, cc_rank(block.complexity), round(mi, 1), mi_rank(mi))
        result.functions.append(metrics)
        severity = CC_SEVERITY.get(metrics.complexity_rank)
        if severity:
            result.findings.append(
                Finding(
                    rule_id="CC",
                    tool="radon",
                    severity=severity,
                    message=f"{name} has cyclomatic complexity {block.complexity} (rank {metrics.complexity_rank})",
                    location=FileSpan(path, block.lineno, block.col_offset, end, 0),
                    category="complexity",
                    fix_hint="Split the function: extract branches into smaller functions or use a lookup table.",
                    snippet=lines[block.lineno - 1].strip() if block.lineno <= len(lines) else "",
                )
            )
    total_comments = comments[-1] + _docstring_lines(tree)
    file_mi = mi_compute(
        halstead.total.volume, visitor.total_complexity, len(statement_lines), total_comments * 100.0 / len(lines) if lines else 0.0
    )
    result.maintainability, result.maintainability_rank = round(file_mi, 1), mi_rank(file_mi)
    if result.maintainability_rank in MI_SEVERITY:
        result.findings.append(
            Finding(
                rule_id="MI",
                tool="radon",
                severity=MI_SEVERITY[result.maintainability_rank],
                message=f"maintainability index {result.maintainability} (rank {result.maintainability_rank})",
                location=FileSpan(path, 1),
                category="maintainability",
                fix_hint="Break the module up; reduce branching and long functions.",
            )
        )
    return result


def analyze_python(path: str, data: bytes) -> PythonFileResult:
    """bandit and radon on one file; a file Python cannot parse gets no metrics (ruff reports the syntax error)."""
    try:
        tree = ast.parse(data, filename=path)  # bytes, as bandit parses them: the file's coding line is honoured
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return PythonFileResult(parsed=False)
    # bandit first: its visitor only adds attributes to the nodes, which radon's visitors ignore.
    found = bandit_findings(path, data, tree)
    result = radon_metrics(path, tree, data.decode("utf-8-sig", "replace").splitlines())
    result.findings = found + result.findings
    return result
