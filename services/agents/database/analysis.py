"""One Database Analyzer pass: a schema from one source, queries against it, findings, an ER diagram, a report."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from services.agents.database.ddl import schema_from_ddl
from services.agents.database.findings import RULES, DbFinding
from services.agents.database.mermaid import er_diagram
from services.agents.database.model import Schema
from services.agents.database.postgres_catalog import connect, schema_from_postgres
from services.agents.database.query_rules import query_findings
from services.agents.database.schema_rules import schema_findings
from services.agents.database.sqlite_file import schema_from_sqlite
from services.agents.database.statements import ParseProblem, split_statements

SEVERITY_ORDER = ("critical", "high", "medium", "low", "info")


@dataclass
class DatabaseAnalysis:
    """The schema read, every finding (schema ones first, then query ones in file order) and the ER diagram."""

    schema: Schema
    findings: list[DbFinding] = field(default_factory=list)
    diagram: str = ""
    query_statements: int = 0
    files: list[str] = field(default_factory=list)

    @property
    def index_statements(self) -> list[str]:
        """Every suggested CREATE INDEX, in finding order."""
        return [f.sql for f in self.findings if "CREATE INDEX" in f.sql]


def _problem_findings(problems: Sequence[ParseProblem]) -> list[DbFinding]:
    return [DbFinding("parse-error", p.message, file=p.file, line=p.line) for p in problems]


Check = Callable[[], None]  # raises to stop a run (cancelled, past its deadline); called between units of work


def _never() -> None:
    return None


def analyse(schema: Schema, problems: Sequence[ParseProblem] = (), queries: Sequence[tuple[str, str]] = (),
            files: Sequence[str] = (), check: Check = _never) -> DatabaseAnalysis:
    """Findings on `schema` and on the (name, text) query files, which are read in the schema's dialect."""
    statements, query_problems = [], list(problems)
    for name, text in queries:
        check()
        parsed, unreadable = split_statements(text, schema.dialect, name)
        statements += parsed
        query_problems += unreadable
    check()
    findings = _problem_findings(query_problems) + schema_findings(schema)
    check()
    findings += query_findings(statements, schema)
    return DatabaseAnalysis(schema, findings, er_diagram(schema), len(statements), [*files, *(n for n, _ in queries)])


def analyse_ddl(sources: Sequence[tuple[str, str]], dialect: str, queries: Sequence[tuple[str, str]] = (),
                check: Check = _never) -> DatabaseAnalysis:
    schema, problems = schema_from_ddl(sources, dialect, check)
    return analyse(schema, problems, queries, [n for n, _ in sources], check)


def analyse_sqlite(path: Path, label: str, queries: Sequence[tuple[str, str]] = (), check: Check = _never) -> DatabaseAnalysis:
    return analyse(schema_from_sqlite(path, label), (), queries, [label], check)


def analyse_postgres(dsn: str, label: str, schemas: Sequence[str] = (), queries: Sequence[tuple[str, str]] = (),
                     timeout: float = 30.0, check: Check = _never) -> DatabaseAnalysis:
    """Reads the catalog in one read-only transaction; `timeout` bounds the connection and each statement."""
    with connect(dsn, timeout=timeout) as connection:
        schema = schema_from_postgres(connection, label, schemas)
    return analyse(schema, (), queries, check=check)


def summary(analysis: DatabaseAnalysis) -> str:
    counts = Counter(f.severity for f in analysis.findings)
    by_severity = ", ".join(f"{counts[s]} {s}" for s in SEVERITY_ORDER if counts[s])
    schema = analysis.schema
    return (f"Read {len(schema.tables)} tables ({sum(len(t.columns) for t in schema.tables)} columns, "
            f"{sum(len(t.indexes) for t in schema.tables)} indexes, {sum(len(t.foreign_keys) for t in schema.tables)} "
            f"foreign keys) in the {schema.dialect} dialect and {analysis.query_statements} query statements: "
            f"{len(analysis.findings)} findings" + (f" ({by_severity})." if by_severity else "."))


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def report(analysis: DatabaseAnalysis) -> str:
    """Markdown: the summary, one row per finding with its fix, the suggested statements, and the ER diagram."""
    lines = ["# Database analysis", "", summary(analysis), ""]
    if analysis.findings:
        lines += ["| rule | severity | where | message | fix |", "|---|---|---|---|---|"]
        for f in analysis.findings:
            where = f"{f.file}:{f.line}" if f.file and f.line else ".".join(p for p in (f.table, f.column) if p)
            lines.append(f"| {f.rule} | {f.severity} | {_cell(where)} | {_cell(f.message)} | {_cell(f.sql or f.hint)} |")
        lines.append("")
    statements = [f.sql for f in analysis.findings if f.sql]
    if statements:
        lines += ["## Suggested statements", "", "Review each before running it; they are in finding order.", "", "```sql",
                  *statements, "```", ""]
    lines += ["## Rules", "", *(f"- `{rule}` ({severity}): {meaning}" for rule, (severity, _, meaning) in RULES.items()), ""]
    lines += ["## Entity-relationship diagram", "", "```mermaid", analysis.diagram.rstrip("\n"), "```", ""]
    return "\n".join(lines)
