"""The Database Analyzer agent: its spec, its input checks, and its findings as the common finding record."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import psycopg

from services.agents.base import AgentSpec, Artifact, FileSpan, Finding, NamedObject, RunContext, RunResult
from services.agents.database.analysis import (
    DatabaseAnalysis,
    analyse_ddl,
    analyse_postgres,
    analyse_sqlite,
    report,
    summary,
)
from services.agents.database.explain import explain, explanations_markdown
from services.agents.database.findings import QUERY_RULES, DbFinding
from services.agents.database.folder import discover
from services.agents.database.inputs import connection_dsn, read_sql_sources, resolve_input_path
from services.agents.database.model import DIALECTS
from services.agents.database.postgres_catalog import UnknownSchema
from services.agents.database.sqlite_file import NotASqliteDatabase
from services.runtime.config import Config
from services.runtime.errors import InvalidArgument, Unavailable
from services.runtime.file_walk import open_file
from services.runtime.workspace import PATH_SCHEMA, resolve_in_roots

NAME = "database-analyzer"
TOOL = "database-analyzer"
SOURCES = ("ddl", "sqlite_database", "connection")
FOLDER_EXCLUDES = (*SOURCES, "queries", "schemas")  # a folder is read whole: it names its own sources
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


def _strings(arguments: dict[str, Any], name: str) -> list[str]:
    value = arguments.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise InvalidArgument.field(f"input.{name}", "must be a list of non-empty strings")
    return value


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


def _configured_connections() -> dict[str, str]:
    # SPEC is listed without its setting (the catalog passes none), so it reads MCPMESH_DATABASE_CONNECTIONS here.
    return dict(Config.from_env("agents").database_connections)


@dataclass
class Read:
    """What one run read and what came of it."""

    analysis: DatabaseAnalysis
    texts: dict[str, str]  # file name -> SQL text, for snippets and line counts
    skipped: list[str] = field(default_factory=list)  # files of a folder that could not be read
    unused_databases: list[str] = field(default_factory=list)  # SQLite databases of a folder not analysed
    truncated: bool = False
    databases: int = 0  # SQLite database files read (0 or 1)


def analyse_arguments(arguments: dict[str, Any], context: RunContext,
                      connections: Callable[[], Mapping[str, str]] = _configured_connections) -> Read:
    """Checks the input (fields named `input.*`), reads the one schema source and the queries, and analyses them."""
    if "path" in arguments:
        return _analyse_folder(arguments, context)
    given = [name for name in SOURCES if name in arguments]
    if len(given) > 1:
        raise InvalidArgument.field(f"input.{given[1]}", f"give one schema source, not both {given[0]} and {given[1]}")
    if not given and "queries" not in arguments:
        raise InvalidArgument.field("input.ddl", "give a schema source (ddl, sqlite_database or connection), or queries")
    dialect = arguments.get("dialect", "postgres")
    if dialect not in DIALECTS:
        raise InvalidArgument.field("input.dialect", f"must be one of {', '.join(DIALECTS)}")
    if "schemas" in arguments and given != ["connection"]:
        raise InvalidArgument.field("input.schemas", "applies only with input.connection")
    limits = context.limits
    queries = read_sql_sources(_strings(arguments, "queries"), context.roots, "input.queries", max_files=limits.max_files,
                               max_bytes=limits.max_file_bytes) if "queries" in arguments else []
    context.check()
    texts = dict(queries)
    if given == ["connection"]:
        if "dialect" in arguments and dialect != "postgres":
            raise InvalidArgument.field("input.dialect", "must be postgres with input.connection")
        name = arguments["connection"]
        dsn = connection_dsn(name, connections(), "input.connection")
        try:
            analysis = analyse_postgres(dsn, name, _strings(arguments, "schemas"), queries, check=context.check)
        except UnknownSchema as exc:
            raise InvalidArgument.field(f"input.schemas[{exc.position}]", str(exc), reason="SCHEMA_NOT_FOUND") from None
        except psycopg.Error as exc:  # refused, authentication, timeout, a server older than PostgreSQL 11
            # The server's reason (refused, authentication) without the DSN, which may hold a password.
            reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            raise Unavailable(f"cannot read PostgreSQL connection {name!r}: {reason}", reason="DATABASE_UNAVAILABLE") from None
    elif given == ["sqlite_database"]:
        if "dialect" in arguments and dialect != "sqlite":
            raise InvalidArgument.field("input.dialect", "must be sqlite with input.sqlite_database")
        path, label = resolve_input_path(arguments["sqlite_database"], context.roots, "input.sqlite_database", kind="file")
        try:
            os.close(open_file(path)[0])  # the same refusals as for files read: symlinked components, hard links
        except OSError as exc:
            raise InvalidArgument.field("input.sqlite_database", f"cannot be opened ({exc.strerror or type(exc).__name__})",
                                        reason="PATH_NOT_READABLE") from None
        try:
            analysis = analyse_sqlite(path, label, queries, check=context.check)
        except NotASqliteDatabase as exc:
            raise InvalidArgument.field("input.sqlite_database", str(exc), reason="NOT_A_SQLITE_DATABASE") from None
        return Read(analysis, texts, databases=1)
    else:
        sources = read_sql_sources(_strings(arguments, "ddl"), context.roots, "input.ddl", max_files=limits.max_files,
                                   max_bytes=limits.max_file_bytes) if "ddl" in arguments else []
        texts.update(sources)
        analysis = analyse_ddl(sources, dialect, queries, check=context.check)
    return Read(analysis, texts)


def _analyse_folder(arguments: dict[str, Any], context: RunContext) -> Read:
    """Everything a folder holds: its DDL files as the schema (else its first SQLite database), its other SQL as queries."""
    if clash := next((name for name in FOLDER_EXCLUDES if name in arguments), None):
        raise InvalidArgument.field(f"input.{clash}", "cannot be given with input.path, which is searched for every source")
    dialect = arguments.get("dialect")
    if dialect is not None and dialect not in DIALECTS:
        raise InvalidArgument.field("input.dialect", f"must be one of {', '.join(DIALECTS)}")
    folder = resolve_in_roots(arguments["path"], context.roots, "input.path", kind="folder")
    limits = context.limits
    found = discover(folder, dialect, max_files=limits.max_files, max_bytes=limits.max_file_bytes)
    context.check()
    texts = dict(found.schema_sources + found.queries)
    if found.schema_sources or not found.sqlite_files:
        if not texts:
            raise InvalidArgument.field("input.path", "holds no .sql or .ddl files and no SQLite database", reason="NOTHING_TO_ANALYSE")
        analysis = analyse_ddl(found.schema_sources, found.dialect, found.queries, check=context.check)
    else:
        path, label = found.sqlite_files[0]
        try:
            analysis = analyse_sqlite(path, label, found.queries, check=context.check)
        except NotASqliteDatabase as exc:
            raise InvalidArgument.field("input.path", str(exc), reason="NOT_A_SQLITE_DATABASE") from None
    used = 0 if found.schema_sources else min(1, len(found.sqlite_files))
    unused = [label for _, label in found.sqlite_files[used:]]
    return Read(analysis, texts, skipped=found.skipped, unused_databases=unused, truncated=found.truncated, databases=used)


def _schema_json(analysis: DatabaseAnalysis) -> str:
    return json.dumps(asdict(analysis.schema), indent=2, sort_keys=True) + "\n"


def run(arguments: dict[str, Any], context: RunContext,
        connections: Callable[[], Mapping[str, str]] = _configured_connections) -> RunResult:
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
        return run(arguments, context, (lambda: fixed) if fixed is not None else _configured_connections)

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
