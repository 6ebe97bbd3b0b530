"""The Database Analyzer agent: its spec, its run, and its findings as the common finding record."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import asdict
from typing import Any

from services.agents.base import AgentSpec, Artifact, FileSpan, Finding, NamedObject, RunContext, RunResult
from services.agents.database.agent_input import Read, analyse_arguments, configured_connections
from services.agents.database.analysis import DatabaseAnalysis, report, summary
from services.agents.database.explain import explain, explanations_markdown
from services.agents.database.findings import QUERY_RULES, DbFinding
from services.agents.database.model import DIALECTS
from services.runtime.workspace import PATH_SCHEMA

NAME = "database-analyzer"
TOOL = "database-analyzer"
_PATHS = {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 4096}, "minItems": 1, "maxItems": 1000}
PARAMETERS: dict[str, Any] = {
    "type": "object",
    "description": "A folder (path) to search for schema and query files and SQLite databases; or exactly one schema "
    "source (ddl, sqlite_database or connection) with optional query files; or queries alone.",
    "properties": {
        "path": {**PATH_SCHEMA, "description": "Folder inside a workspace root: .sql/.ddl files that create or alter tables "
                 "are the schema, other .sql files are queries; without them, the first SQLite database found."},
        "ddl": {**_PATHS, "description": "DDL files, or folders of .sql files (natural order: V2 before V10), applied in order."},
        "dialect": {"type": "string", "enum": list(DIALECTS), "default": "postgres",
                    "description": "SQL dialect of the DDL and query files."},
        "sqlite_database": {"type": "string", "minLength": 1, "maxLength": 4096,
                            "description": "A SQLite database file inside a workspace root, opened read-only."},
        "connection": {"type": "string", "minLength": 1, "maxLength": 64,
                       "description": "Name of a PostgreSQL connection configured in MCPMESH_DATABASE_CONNECTIONS (never a DSN)."},
        "schemas": {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 63}, "maxItems": 100,
                    "description": "PostgreSQL schemas to read with `connection`; default: every user schema."},
        "queries": {**_PATHS, "description": "Query files, or folders of .sql files, checked against the schema."},
    },
    "additionalProperties": False,
}
# How sure a rule is that the finding is a real problem; the others are "high".
_CONFIDENCE = {"implied-relationship": "medium", "unindexed-filter": "medium", "nullable-unique": "medium"}


def _location(finding: DbFinding) -> FileSpan | NamedObject:
    """Schema findings are at a named object (index, column or table); query and parse findings at a file and line."""
    if finding.rule in QUERY_RULES or finding.rule == "parse-error" or not finding.table:
        return FileSpan(finding.file, finding.line)
    if finding.index:
        return NamedObject("index", f"{finding.table}.{finding.index}")
    if finding.column:
        return NamedObject("column", f"{finding.table}.{finding.column}")
    return NamedObject("table", finding.table)


def to_finding(finding: DbFinding, sources: dict[str, list[str]]) -> Finding:
    """The common record: schema findings are at a named object (table, column, index), query findings at a line."""
    location = _location(finding)
    lines = sources.get(finding.file, [])
    snippet = lines[finding.line - 1].strip() if 0 < finding.line <= len(lines) else ""
    if isinstance(location, NamedObject):
        # The object's name alone: the same finding from DDL, a dump or the live catalog is one finding.
        identity = "\x1f".join((finding.rule, location.kind, location.name))
    else:
        # Without the line number: the fingerprint survives edits above the finding.
        identity = "\x1f".join((finding.rule, finding.table, finding.column, finding.file, snippet))
    fix = finding.sql or finding.hint
    if finding.sql and finding.hint:
        fix = f"{finding.sql}\n-- {finding.hint}"
    return Finding(finding.rule, TOOL, finding.severity, finding.message, location, category=finding.category,
                   confidence=_CONFIDENCE.get(finding.rule, "high"), fix_hint=fix, snippet=snippet,
                   fingerprint=hashlib.sha256(identity.encode()).hexdigest()[:32])


def _schema_json(analysis: DatabaseAnalysis) -> str:
    return json.dumps(asdict(analysis.schema), indent=2, sort_keys=True) + "\n"


def run(arguments: dict[str, Any], context: RunContext,
        connections: Callable[[], Mapping[str, str]] = configured_connections) -> RunResult:
    context.progress("reading the schema and queries", 0.0)
    read = analyse_arguments(arguments, context, connections)
    analysis, texts = read.analysis, read.texts
    context.progress("analysed", 0.7)
    context.check()
    lines = {name: text.splitlines() for name, text in texts.items()}
    findings = [to_finding(f, lines) for f in analysis.findings]
    statements = [f.sql for f in analysis.findings if f.sql]
    schema = analysis.schema
    artifacts = [
        Artifact("report.md", "text/markdown", report(analysis)),
        Artifact("schema.mmd", "text/vnd.mermaid", analysis.diagram),
        Artifact("schema.json", "application/json", _schema_json(analysis)),
    ]
    if statements:
        artifacts.append(Artifact("fixes.sql", "application/sql",
                                  "-- Suggested by the Database Analyzer; review each before running it.\n" + "\n".join(statements) + "\n"))
    llm_status, tokens = context.model_status, (0, 0)
    if context.model is not None:
        context.progress("model explains the findings", 0.8)
        explained = explain(analysis.findings, context.model)
        llm_status, tokens = explained.status, (explained.input_tokens, explained.output_tokens)
        if explained.by_finding:
            artifacts.append(Artifact("explanations.md", "text/markdown", explanations_markdown(analysis.findings, explained)))
    return RunResult(
        findings=findings,
        artifacts=artifacts,
        metrics={"tables": len(schema.tables), "columns": sum(len(t.columns) for t in schema.tables),
                 "indexes": sum(len(t.indexes) for t in schema.tables),
                 "foreign_keys": sum(len(t.foreign_keys) for t in schema.tables),
                 "query_statements": analysis.query_statements, "findings": len(findings),
                 "index_suggestions": len(analysis.index_statements)},
        summary=summary(analysis) + _unread(read),
        files_analyzed=len(texts) + read.databases,
        files_skipped=len(read.skipped),
        truncated=read.truncated,
        lines_analyzed=sum(len(v) for v in lines.values()),
        input_tokens=tokens[0],
        output_tokens=tokens[1],
        llm_status=llm_status,
    )


def _unread(read: Read) -> str:
    parts = []
    if read.unused_databases:
        parts.append(f" SQLite databases not analysed (one schema per run): {', '.join(read.unused_databases)}.")
    if read.skipped:
        parts.append(f" Files not read (too large, not UTF-8 or unreadable): {', '.join(read.skipped)}.")
    return "".join(parts)


def spec(connections: Mapping[str, str] | None = None) -> AgentSpec:
    """The agent; `connections` (Config.database_connections as a dict) when the wiring passes them, else read at run."""
    fixed = dict(connections) if connections is not None else None

    def run_with(arguments: dict[str, Any], context: RunContext) -> RunResult:
        return run(arguments, context, (lambda: fixed) if fixed is not None else configured_connections)

    return AgentSpec(
        name=NAME,
        display_name="Database Analyzer",
        description="Schema analysis and optimisation: reads DDL (PostgreSQL, MySQL, SQLite), a SQLite database file or "
        "a configured live PostgreSQL database, and query files; reports missing keys, unindexed foreign keys, duplicate "
        "and redundant indexes, implied relationships, risky types and query anti-patterns, each index suggestion a "
        "runnable CREATE INDEX; draws the schema as a Mermaid ER diagram.",
        parameters=PARAMETERS,
        run=run_with,
        capabilities=("sql", "postgresql", "mysql", "sqlite", "schema", "indexes", "mermaid"),
        uses_model=True,
    )


SPEC = spec()
