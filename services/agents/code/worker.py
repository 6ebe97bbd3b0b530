"""What a worker process does with one file: every per-file analyser for its language, as plain data."""

from __future__ import annotations

from dataclasses import dataclass, field

from services.agents.base import FileSpan, Finding
from services.agents.code.python_file import FunctionMetrics, analyze_python
from services.agents.code.secrets import scan_text
from services.agents.code.treesitter import analyze_tree

SECRET_CWE = 798  # use of hard-coded credentials


@dataclass
class FileOutcome:
    """Everything found in one file; cached by the file's content hash."""

    language: str
    findings: list[Finding] = field(default_factory=list)
    functions: list[FunctionMetrics] = field(default_factory=list)
    classes: int = 0
    maintainability: float | None = None
    maintainability_rank: str = ""
    parsed: bool = True


def secret_findings(path: str, text: str) -> list[Finding]:
    return [
        Finding(
            rule_id=secret.kind.upper().replace(" ", "-"),
            tool="detect-secrets",
            severity="high",
            message=f"{secret.kind} found in the source",
            location=FileSpan(path, secret.line),
            category="secrets",
            confidence="medium",
            cwe=SECRET_CWE,
            fix_hint="Move the secret out of the code (environment, secret store) and rotate it.",
            snippet=secret.masked_line,
            fingerprint=secret.hashed,  # a basis for the final fingerprint: same secret, same finding
        )
        for secret in scan_text(path, text)
    ]


def analyze_file(path: str, data: bytes, language: str) -> FileOutcome:
    """Python: bandit, radon and detect-secrets; JavaScript/TypeScript/Go: tree-sitter and detect-secrets; other
    text files: detect-secrets. The file is parsed, never imported or run."""
    text = data.decode("utf-8-sig", "replace")
    outcome = FileOutcome(language)
    if language == "python":
        python = analyze_python(path, data)
        outcome.findings, outcome.functions, outcome.classes = python.findings, python.functions, python.classes
        outcome.parsed = python.parsed
        if python.parsed:
            outcome.maintainability, outcome.maintainability_rank = python.maintainability, python.maintainability_rank
    elif language in ("javascript", "typescript", "tsx", "go"):
        tree = analyze_tree(path, data, language)
        outcome.findings, outcome.functions, outcome.parsed = tree.findings, tree.functions, tree.parsed
    outcome.findings += secret_findings(path, text)
    return outcome
