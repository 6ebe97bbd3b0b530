"""The Code Analyzer agent: security (bandit, detect-secrets, tree-sitter sinks), lint (ruff), complexity and
maintainability (radon, tree-sitter) for Python, JavaScript, TypeScript and Go, exported as SARIF and JSON."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from services.agents.base import SEVERITIES, AgentSpec, Artifact, RunContext, RunResult
from services.agents.code.analyzer import CodeReport, analyze
from services.agents.code.cache import FileCache, MemoryFileCache, SqliteFileCache
from services.agents.code.exports import baseline_fingerprints, to_json, to_sarif
from services.agents.code.review import review
from services.runtime.errors import InvalidArgument
from services.runtime.workspace import path_input_schema

FORMATS = ("sarif", "json")
REPORT_ROWS = 200  # findings listed in the Markdown report; all of them are in the exports and paged over the API
MAX_BASELINE_BYTES = 64 * 2**20

_memory_cache = MemoryFileCache()


def _parameters() -> dict[str, Any]:
    schema = path_input_schema()
    path_property = dict(schema["properties"])  # type: ignore[call-overload]  # {"path": ...}
    schema["properties"] = {
        **path_property,
        "formats": {
            "type": "array",
            "items": {"type": "string", "enum": list(FORMATS)},
            "description": "Exports to attach as artifacts: SARIF 2.1.0 (findings.sarif) and JSON (findings.json).",
        },
        "baseline": {
            "type": "string",
            "maxLength": 4096,
            "description": "An earlier SARIF or JSON export (a file inside the workspace, or relative to path): "
            "findings it holds are not reported again.",
        },
    }
    return schema


def _formats(arguments: dict[str, Any]) -> list[str]:
    formats = arguments.get("formats", [])
    for i, name in enumerate(formats):
        if name not in FORMATS:
            raise InvalidArgument.field(f"input.formats[{i}]", f"must be one of {', '.join(FORMATS)}")
    return sorted(set(formats))


def _baseline(arguments: dict[str, Any], root: Path, context: RunContext) -> frozenset[str]:
    value = arguments.get("baseline")
    if value is None:
        return frozenset()
    field = "input.baseline"
    if not isinstance(value, str) or not value or "\x00" in value:
        raise InvalidArgument.field(field, "must be a non-empty file path")
    try:
        path = (root / value).resolve(strict=True)
    except (OSError, RuntimeError):
        raise InvalidArgument.field(field, "does not exist", reason="PATH_NOT_FOUND") from None
    if not any(path.is_relative_to(r.resolve()) for r in context.roots):
        raise InvalidArgument.field(field, "is outside the workspace", reason="PATH_OUTSIDE_WORKSPACE")
    if not path.is_file() or path.stat().st_size > MAX_BASELINE_BYTES:
        raise InvalidArgument.field(field, f"must be a file of at most {MAX_BASELINE_BYTES // 2**20} MiB")
    try:
        return baseline_fingerprints(path.read_text(encoding="utf-8", errors="replace"))
    except ValueError as exc:
        raise InvalidArgument.field(field, str(exc)) from None


def _metrics(report: CodeReport) -> dict[str, Any]:
    functions = report.functions
    worst = sorted(functions, key=lambda item: (-item[1].complexity, item[0], item[1].line))[:10]
    ranks = Counter(f.complexity_rank for _, f in functions)
    return {
        "files": report.files_by_language,
        "functions": len(functions),
        "classes": report.classes,
        "average_complexity": round(sum(f.complexity for _, f in functions) / len(functions), 2) if functions else 0,
        "complexity_ranks": dict(sorted(ranks.items())),
        "most_complex": [
            {"file": file, "function": f.name, "line": f.line, "complexity": f.complexity, "rank": f.complexity_rank,
             **({"maintainability": f.maintainability, "maintainability_rank": f.maintainability_rank} if f.maintainability_rank else {})}
            for file, f in worst
        ],
        "least_maintainable": [
            {"file": file, "maintainability": mi, "rank": rank} for file, mi, rank in sorted(report.maintainability, key=lambda m: m[1])[:10]
        ],
        "unparsed_files": report.unparsed[:50],
        "cache_hits": report.cache_hits,
        "suppressed": report.suppressed,
        "baseline_matched": report.baseline_matched,
        "tools": report.tools,
    }


def _summary(report: CodeReport, total_files: int) -> str:
    by_severity = Counter(f.severity for f in report.findings)
    counts = ", ".join(f"{by_severity[s]} {s}" for s in SEVERITIES if by_severity[s])
    languages = ", ".join(f"{n} {lang}" for lang, n in report.files_by_language.items())
    text = (
        f"Analysed {total_files} files ({languages or 'none'}; {report.lines} lines, {len(report.functions)} functions, "
        f"{report.classes} classes): {len(report.findings)} findings" + (f" ({counts})." if counts else ".")
    )
    if report.baseline_matched:
        text += f" {report.baseline_matched} findings already in the baseline are not repeated."
    return text


def _report(report: CodeReport, summary: str, notes: str) -> str:
    lines = ["# Code analysis", "", summary, ""]
    if notes:
        lines += [notes, ""]
    lines += ["| severity | rule | tool | where | message |", "|---|---|---|---|---|"]
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    shown = sorted(report.findings, key=lambda f: (rank[f.severity], f.sort_key()))[:REPORT_ROWS]
    lines += [f"| {f.severity} | {f.rule_id} | {f.tool} | {f.file}:{f.line} | {f.message.replace('|', '/')} |" for f in shown]
    if len(report.findings) > REPORT_ROWS:
        lines += ["", f"{len(report.findings) - REPORT_ROWS} more findings are in the exports and the run's finding list."]
    return "\n".join(lines) + "\n"


def _cache(context: RunContext) -> FileCache:
    if context.data_dir is None:
        return _memory_cache
    return SqliteFileCache(context.data_dir / "code-analyzer-cache.db")


def run(arguments: dict[str, Any], context: RunContext) -> RunResult:
    root = context.folder(arguments)
    formats = _formats(arguments)
    baseline = _baseline(arguments, root, context)
    context.progress("analysing files", 0.0)

    def files_done(done: int, total: int) -> None:
        # Analysis is most of the run; the exports and the model review are the rest.
        context.progress("analysing files", 0.9 * done / total if total else 0.9, done, total)

    report = analyze(root, context.limits, context.check, _cache(context), baseline, progress=files_done)
    total_files = sum(report.files_by_language.values())
    summary = _summary(report, total_files)
    metrics = _metrics(report)
    model = review(report.findings, summary, context)
    artifacts = [Artifact("report.md", "text/markdown", _report(report, summary, model.text))]
    if "sarif" in formats:
        artifacts.append(Artifact("findings.sarif", "application/sarif+json", json.dumps(to_sarif(report.findings, report.tools), indent=1)))
    if "json" in formats:
        artifacts.append(Artifact("findings.json", "application/json", json.dumps(to_json(report.findings, summary, metrics), indent=1)))
    return RunResult(
        findings=report.findings,
        artifacts=artifacts,
        metrics=metrics,
        summary=summary + (" " + model.note if model.note else ""),
        files_analyzed=total_files,
        files_skipped=report.files_skipped,
        lines_analyzed=report.lines,
        input_tokens=model.input_tokens,
        output_tokens=model.output_tokens,
        llm_status=model.status,
        truncated=report.truncated,
    )


SPEC = AgentSpec(
    name="code-analyzer",
    display_name="Code Analyzer",
    description="Static analysis and security scanning of Python, JavaScript, TypeScript and Go without running the "
    "code: bandit (every default plugin), ruff, radon complexity and maintainability with ranks, detect-secrets, and "
    "tree-sitter complexity and security sinks; suppressions, baselines, SARIF 2.1.0 and JSON exports; a model review "
    "of the most severe findings when Bedrock is configured.",
    parameters=_parameters(),
    run=run,
    capabilities=("python", "javascript", "typescript", "go", "security", "secrets", "lint", "complexity",
                  "maintainability", "sarif", "json", "baseline"),
    uses_model=True,
)
