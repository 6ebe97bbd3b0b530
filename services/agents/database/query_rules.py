"""Findings on query files: SELECT *, unbounded writes, predicates no index can serve, and filters to index."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from services.agents.database.ddl import identifier, table_name
from services.agents.database.findings import DbFinding
from services.agents.database.model import Schema, Table
from services.agents.database.schema_rules import is_covered
from services.agents.database.sql_text import create_index, index_hint, index_name, quote
from services.agents.database.statements import Statement

_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.In, exp.Between, exp.Like, exp.ILike)
# Functions PostgreSQL marks IMMUTABLE (SQLite: deterministic; MySQL 8: allowed in functional key parts).
_INDEXABLE_FUNCTIONS = (exp.Lower, exp.Upper, exp.Abs)
# Index methods that can serve LIKE '%...%' (with pg_trgm's operator classes).
_TEXT_SEARCH_METHODS = frozenset({"gin", "gist"})
_Scope = exp.Select | exp.Update | exp.Delete


def query_findings(statements: Iterable[Statement], schema: Schema) -> list[DbFinding]:
    """Every query finding, in file and line order; index suggestions are made once per table and key."""
    found: list[DbFinding] = []
    suggested: set[tuple[str, str]] = set()
    for statement in statements:
        for finding in _statement_findings(statement, schema):
            if finding.rule == "unindexed-filter":
                if (finding.table, finding.column) in suggested:
                    continue
                suggested.add((finding.table, finding.column))
            found.append(finding)
    return sorted(found, key=lambda f: f.sort_key())


def _line(node: exp.Expr, fallback: int) -> int:
    for part in node.walk():
        line = part.meta.get("line")
        if line:
            return int(line)
    return fallback


def _statement_findings(statement: Statement, schema: Schema) -> Iterator[DbFinding]:
    root, file = statement.expression, statement.file
    for node in root.walk():
        if isinstance(node, exp.Select):
            yield from _select_star(node, statement)
        elif isinstance(node, exp.Update | exp.Delete) and not node.args.get("where"):
            verb = "update" if isinstance(node, exp.Update) else "delete"
            target = node.this.sql(dialect=schema.dialect) if node.this is not None else ""
            yield DbFinding(f"{verb}-without-where", f"{verb.upper()} on {target} has no WHERE: it {'changes' if verb == 'update' else 'removes'} every row",
                            table=target, file=file, line=_line(node, statement.line),
                            hint="Add a WHERE clause; if every row is meant, say so with WHERE true so a reader knows.")
        elif isinstance(node, _COMPARISONS) and _in_condition(node):
            yield from _predicate(node, statement, schema)


def _select_star(select: exp.Select, statement: Statement) -> Iterator[DbFinding]:
    if isinstance(select.parent, exp.Exists):
        return  # EXISTS (SELECT * ...) reads no columns
    for projection in select.expressions:
        star = projection if isinstance(projection, exp.Star) else projection.this if isinstance(projection, exp.Column) else None
        if isinstance(star, exp.Star):
            yield DbFinding("select-star", f"SELECT {projection.sql()} reads every column; name the columns the caller uses",
                            file=statement.file, line=_line(projection, statement.line))


def _in_condition(node: exp.Expr) -> bool:
    """Whether the comparison filters rows (WHERE, JOIN ... ON, HAVING), rather than computing a value."""
    parent = node.parent
    while parent is not None and not isinstance(parent, _Scope):
        if isinstance(parent, exp.Where | exp.Having) or (isinstance(parent, exp.Join) and node in parent.args.get("on", exp.Null()).walk()):
            return True
        parent = parent.parent
    return False


def _scope_tables(node: exp.Expr, schema: Schema) -> dict[str, Table]:
    """alias or name -> table, for the tables of the statement (or subquery) `node` is in."""
    scope = node.find_ancestor(exp.Select, exp.Update, exp.Delete)
    found: dict[str, Table] = {}
    if scope is None:
        return found
    for ref in scope.find_all(exp.Table):
        if ref.find_ancestor(exp.Select, exp.Update, exp.Delete) is not scope:
            continue
        table = schema.table(table_name(ref, schema.dialect))
        if table is not None:
            found[(ref.alias_or_name or table.name).lower()] = table
            found.setdefault(table.name.lower(), table)
    return found


def _resolve(column: exp.Column, scope: dict[str, Table], dialect: str) -> tuple[Table, str] | None:
    name = identifier(column.this, dialect)
    if column.table:
        table = scope.get(column.table.lower())
        return (table, name) if table is not None and table.column(name) is not None else None
    owners = {id(t): t for t in scope.values() if t.column(name) is not None}
    return (next(iter(owners.values())), name) if len(owners) == 1 else None


def _wrapped_column(side: exp.Expr | None) -> exp.Column | None:
    """The column inside `side` when side computes something from it (a function, arithmetic, a cast)."""
    if side is None or isinstance(side, exp.Column | exp.Literal | exp.Placeholder | exp.Parameter):
        return None
    return next(side.find_all(exp.Column), None)


def _has_column(side: exp.Expr | None) -> bool:
    return side is not None and next(side.find_all(exp.Column), None) is not None


def _comparable(node: exp.Expr, dialect: str) -> str:
    """Text of an expression without casts or table qualifiers: catalogs add implicit casts (lower(email::text))."""
    def strip(part: exp.Expr) -> exp.Expr:
        if isinstance(part, exp.Cast):
            return part.this
        return exp.column(part.this.copy()) if isinstance(part, exp.Column) else part
    return node.copy().transform(strip).sql(dialect=dialect).lower()


@functools.lru_cache(maxsize=4096)
def _normal(text: str, dialect: str) -> str:
    """_comparable of an index key kept as text."""
    try:
        return _comparable(sqlglot.parse_one(text, read=dialect), dialect)
    except SqlglotError:
        return text.lower()


def _unqualified(node: exp.Expr, dialect: str) -> str:
    def strip(part: exp.Expr) -> exp.Expr:
        return exp.column(part.this.copy()) if isinstance(part, exp.Column) else part
    return node.copy().transform(strip).sql(dialect=dialect)


def _predicate(node: exp.Expr, statement: Statement, schema: Schema) -> Iterator[DbFinding]:
    dialect, file = schema.dialect, statement.file
    left, right = node.this, node.args.get("expression")
    scope = _scope_tables(node, schema)
    line = _line(node, statement.line)
    if isinstance(node, exp.Like | exp.ILike) and isinstance(right, exp.Literal) and right.is_string and right.this[:1] in ("%", "_"):
        found = _leading_wildcard(node, left, scope, dialect, file, line)
        if found is not None:
            yield found
        return
    for side, other in ((left, right), (right, left)):
        wrapped = _wrapped_column(side)
        if wrapped is None or side is None or (isinstance(other, exp.Column) and _has_column(other)):
            continue
        yield from _non_sargable(side, wrapped, scope, dialect, file, line)
        break
    else:
        if not isinstance(node, exp.NEQ):  # an index does not help to find the rows that differ
            yield from _unindexed(left, right, scope, dialect, file, line)


def _leading_wildcard(node: exp.Expr, left: exp.Expr, scope: dict[str, Table], dialect: str, file: str,
                      line: int) -> DbFinding | None:
    resolved = _resolve(left, scope, dialect) if isinstance(left, exp.Column) else None
    sql, table_text, column_text = "", "", ""
    if resolved is not None:
        table, column = resolved
        table_text, column_text = table.name, column
        if any(ix.method in _TEXT_SEARCH_METHODS and column.lower() in (k.lower() for k in ix.keys) for ix in table.indexes):
            return None  # text has no default GIN/GiST operator class: such an index is a trigram (or similar) one
        found = table.column(column)
        if dialect == "postgres" and found is not None and found.family == "text":
            # A trigram GIN index serves LIKE '%...%'; the extension ships with PostgreSQL (contrib).
            sql = "CREATE EXTENSION IF NOT EXISTS pg_trgm; " + create_index(
                table.name, (f"{quote(column, dialect)} gin_trgm_ops",), dialect, expressions=(True,), method="gin",
                name=index_name(table.name, (column, "trgm")))
    return DbFinding("leading-wildcard-like", f"{node.sql(dialect=dialect)} starts with a wildcard: every row is read",
                     table=table_text, column=column_text, file=file, line=line, sql=sql,
                     hint="Anchor the pattern at the start, or use a trigram or full-text index.")


def _non_sargable(side: exp.Expr, column: exp.Column, scope: dict[str, Table], dialect: str, file: str,
                  line: int) -> Iterator[DbFinding]:
    resolved = _resolve(column, scope, dialect)
    expression = _unqualified(side, dialect)
    sql, table_text, column_text = "", "", column.name
    if resolved is not None:
        table, column_text = resolved
        table_text = table.name
        indexed = {_normal(k, dialect) for ix in table.indexes for k, e in zip(ix.keys, ix.expression_keys, strict=False) if e}
        if _comparable(side, dialect) in indexed:
            return  # an expression index serves exactly this predicate
        if isinstance(side, _INDEXABLE_FUNCTIONS) and isinstance(side.this, exp.Column):
            sql = create_index(table.name, (expression,), dialect, expressions=(True,))
    yield DbFinding("non-sargable-predicate",
                    f"{side.sql(dialect=dialect)} wraps column {column_text}: no index on the bare column can serve it",
                    table=table_text, column=column_text, file=file, line=line, sql=sql,
                    hint="Compare the bare column (move the computation to the other side, or use a range), "
                    "or index the expression itself.")


def _unindexed(left: exp.Expr, right: exp.Expr | None, scope: dict[str, Table], dialect: str, file: str,
               line: int) -> Iterator[DbFinding]:
    for side, other in ((left, right), (right, left)):
        if not isinstance(side, exp.Column):
            continue
        if other is not None and _has_column(other) and not isinstance(other, exp.Column):
            continue
        resolved = _resolve(side, scope, dialect)
        if resolved is None:
            continue
        table, column = resolved
        found = table.column(column)
        if found is not None and found.family == "boolean":
            continue  # two values: an index on it alone rarely beats reading the table
        if is_covered(table, (column,)) or any(tuple(c.lower() for c in fk.columns) == (column.lower(),) for fk in table.foreign_keys):
            continue  # covered already, or reported as a foreign key without an index
        yield DbFinding("unindexed-filter", f"{table.name}.{column} is filtered or joined on but no index leads with it",
                        table=table.name, column=column, file=file, line=line, sql=create_index(table.name, (column,), dialect),
                        hint=index_hint(dialect))
