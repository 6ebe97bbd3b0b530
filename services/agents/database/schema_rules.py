"""Findings on a schema model: keys, indexes, relationships and risky types."""

from __future__ import annotations

import re
from collections.abc import Iterator

from services.agents.database.findings import DbFinding
from services.agents.database.model import Column, Index, Schema, Table
from services.agents.database.sql_text import create_index, drop_index, index_hint, qualified, quote

# Index methods whose leading keys serve equality lookups the way a foreign key's checks and joins need.
_ORDERED_METHODS = frozenset({"btree", ""})
_MONEY_WORDS = frozenset({
    "price", "cost", "amount", "total", "subtotal", "balance", "salary", "wage", "fee", "fees", "money", "tax", "paid",
    "payment", "revenue", "charge", "discount", "refund", "credit", "debit", "budget", "income", "expense", "tip",
})
# author_id, AUTHOR_ID, authorId, AuthorID: a stem and an "id" that is a word of its own (not "paid", "valid").
_REFERENCE_NAME = re.compile(r"^(?P<stem>[A-Za-z0-9_]*[A-Za-z0-9])(?:_(?i:id)|Id|ID)$")
# Strength of an index when several say the same: the one kept is the one a constraint needs.
_STRENGTH = {"primary_key": 3, "unique": 2, "foreign_key": 1, "index": 0}


def schema_findings(schema: Schema) -> list[DbFinding]:
    """Every schema finding, sorted by table, column and rule."""
    found: list[DbFinding] = []
    for table in schema.tables:
        found += _missing_primary_key(table)
        found += _fk_without_index(table, schema.dialect)
        found += _duplicate_and_redundant_indexes(table, schema.dialect)
        found += _implied_relationships(table, schema)
        found += _risky_types(table, schema.dialect)
        found += _nullable_unique(table, schema.dialect)
    return sorted(found, key=lambda f: (f.table, f.column, f.index, f.rule))


def _leading(index: Index, count: int) -> list[str] | None:
    """The first `count` keys as lower-case column names, or None when one of them is an expression."""
    if len(index.keys) < count or any(index.expression_keys[:count]):
        return None
    return [k.lower() for k in index.keys[:count]]


def _serves_lookups(index: Index) -> bool:
    return index.where is None and index.method in _ORDERED_METHODS


def _missing_primary_key(table: Table) -> Iterator[DbFinding]:
    if table.primary_key:
        return
    hint = "Add a primary key, such as an identity column."
    candidate = next((ix for ix in table.indexes if ix.unique and ix.where is None and not ix.has_expressions
                      and all((c := table.column(k)) is not None and not c.nullable for k in ix.keys)), None)
    if candidate is not None:
        hint = f"Unique index {candidate.name} on NOT NULL columns ({', '.join(candidate.keys)}) could become the primary key."
    yield DbFinding("missing-primary-key", f"table {table.name} has no primary key", table=table.name,
                    file=table.source.file, line=table.source.line, hint=hint)


def is_covered(table: Table, columns: tuple[str, ...]) -> bool:
    """Whether some index leads with exactly these columns (in any order), so equality lookups on them are indexed."""
    wanted = sorted(c.lower() for c in columns)
    return any(_serves_lookups(ix) and sorted(_leading(ix, len(columns)) or []) == wanted for ix in table.indexes)


def _fk_without_index(table: Table, dialect: str) -> Iterator[DbFinding]:
    for fk in table.foreign_keys:
        if is_covered(table, fk.columns):
            continue
        columns = ", ".join(fk.columns)
        yield DbFinding(
            "fk-without-index",
            f"foreign key {table.name}({columns}) -> {fk.ref_table} has no index leading with its columns: deleting or "
            f"updating a {fk.ref_table} row scans {table.name}, and joins on it cannot use an index",
            table=table.name, column=columns, file=fk.source.file, line=fk.source.line,
            sql=create_index(table.name, fk.columns, dialect), hint=index_hint(dialect))


def _keys(index: Index) -> tuple[str, ...]:
    """Keys as compared: column names fold case, expressions do not."""
    flags = index.expression_keys or (False,) * len(index.keys)
    return tuple(k if expr else k.lower() for k, expr in zip(index.keys, flags, strict=False))


def _signature(index: Index) -> tuple[object, ...]:
    return (_keys(index), index.where, index.method)


def _fix_for_extra(index: Index, dialect: str) -> str:
    # Only a plain index can simply be dropped; a constraint's index goes with its constraint.
    return drop_index(index.name, index.table, dialect) if index.origin == "index" else ""


def _duplicate_and_redundant_indexes(table: Table, dialect: str) -> Iterator[DbFinding]:
    by_signature: dict[tuple[object, ...], list[Index]] = {}
    for index in table.indexes:
        by_signature.setdefault(_signature(index), []).append(index)
    duplicates: set[str] = set()
    for group in by_signature.values():
        if len(group) < 2:
            continue
        # Keep the index a constraint needs (or the unique one, or the first by name, which a catalog and DDL agree on).
        kept = min(group, key=lambda ix: (-_STRENGTH.get(ix.origin, 0), not ix.unique, ix.name))
        for index in group:
            if index is kept:
                continue
            duplicates.add(index.name)
            yield DbFinding(
                "duplicate-index", f"index {index.name} on {table.name}({', '.join(index.keys)}) duplicates {kept.name}",
                table=table.name, column=", ".join(index.keys), index=index.name,
                file=index.source.file, line=index.source.line, sql=_fix_for_extra(index, dialect))
    for index in table.indexes:
        if index.name in duplicates or index.unique or index.origin != "index" or not _serves_lookups(index):
            continue
        wider = next((other for other in table.indexes if other is not index and _serves_lookups(other)
                      and len(other.keys) > len(index.keys)
                      and _keys(other)[: len(index.keys)] == _keys(index)), None)
        if wider is not None:
            yield DbFinding(
                "redundant-index",
                f"index {index.name} on {table.name}({', '.join(index.keys)}) is a leading prefix of {wider.name} "
                f"({', '.join(wider.keys)}), which serves the same lookups",
                table=table.name, column=", ".join(index.keys), index=index.name,
                file=index.source.file, line=index.source.line, sql=drop_index(index.name, index.table, dialect))


def _candidate_tables(stem: str) -> list[str]:
    stem = stem.lower()
    names = [stem, f"{stem}s", f"{stem}es"]
    if stem.endswith("y"):
        names.append(f"{stem[:-1]}ies")
    return names


def _compatible(column: Column, target: Column) -> bool:
    families = {column.family, target.family}
    numeric = {"integer", "serial"}
    return len(families) == 1 or families <= numeric or bool(families & {"untyped", "other"})


def _referenced_by_fk(table: Table, column: str) -> bool:
    return any(column.lower() in (c.lower() for c in fk.columns) for fk in table.foreign_keys)


def _implied_relationships(table: Table, schema: Schema) -> Iterator[DbFinding]:
    by_bare_name = {t.name.split(".")[-1].lower(): t for t in schema.tables}
    for column in table.columns:
        match = _REFERENCE_NAME.match(column.name)
        if not match or _referenced_by_fk(table, column.name):
            continue
        stem = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", match.group("stem"))  # authorId -> author
        target = next((by_bare_name[n] for n in _candidate_tables(stem) if n in by_bare_name), None)
        if target is None or len(target.primary_key) != 1:
            continue
        key = target.column(target.primary_key[0])
        if key is None or (target is table and column.name.lower() == key.name.lower()) or not _compatible(column, key):
            continue
        sql = ""
        if schema.dialect != "sqlite":  # SQLite cannot add a constraint to an existing table
            constraint = quote(f"{table.name.split('.')[-1]}_{column.name}_fkey".lower(), schema.dialect)
            sql = (f"ALTER TABLE {qualified(table.name, schema.dialect)} ADD CONSTRAINT {constraint} FOREIGN KEY "
                   f"({quote(column.name, schema.dialect)}) REFERENCES {qualified(target.name, schema.dialect)} "
                   f"({quote(key.name, schema.dialect)});")
        yield DbFinding(
            "implied-relationship",
            f"{table.name}.{column.name} looks like a reference to {target.name}.{key.name} but has no foreign key",
            table=table.name, column=column.name, file=column.source.file, line=column.source.line, sql=sql,
            hint="Declare the foreign key so the database keeps the reference valid (and index the column).")


def _money_like(name: str) -> bool:
    words = set(re.split(r"[^a-z0-9]+|(?<=[a-z])(?=[0-9])", re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()))
    return bool(words & _MONEY_WORDS)


def _risky_types(table: Table, dialect: str) -> Iterator[DbFinding]:
    name = qualified(table.name, dialect)
    for column in table.columns:
        col = quote(column.name, dialect)

        def finding(rule: str, message: str, sql: str = "", hint: str = "", column: Column = column) -> DbFinding:
            return DbFinding(rule, message, table=table.name, column=column.name, file=column.source.file,
                             line=column.source.line, sql=sql, hint=hint)

        if column.family == "timestamp" and dialect == "postgres":
            yield finding(
                "timestamp-without-time-zone",
                f"{table.name}.{column.name} is {column.type.lower()}: the same value means different instants in different "
                "time zones",
                sql=f"ALTER TABLE {name} ALTER COLUMN {col} TYPE timestamptz USING {col} AT TIME ZONE 'UTC';",
                hint="timestamptz stores an instant; the fix assumes the stored values are UTC.")
        if column.family == "float" and _money_like(column.name):
            yield finding(
                "float-for-money",
                f"{table.name}.{column.name} holds money in {column.type.lower()}: binary floating point cannot represent "
                "most decimal amounts, so sums drift",
                sql=_decimal_column(name, col, column, dialect),
                hint="Use numeric/decimal with a fixed scale, or an integer count of the smallest unit.")
        if column.family == "serial" and dialect == "postgres":
            yield finding(
                "serial-over-identity",
                f"{table.name}.{column.name} is {column.type.lower() or 'serial'}: its sequence is a separate object with "
                "its own permissions and ownership",
                hint=f"Declare it as {_identity_type(column)} GENERATED BY DEFAULT AS IDENTITY (SQL standard, PostgreSQL 10+).")


def _decimal_column(table: str, col: str, column: Column, dialect: str) -> str:
    if dialect == "postgres":
        return f"ALTER TABLE {table} ALTER COLUMN {col} TYPE numeric(12, 2);"
    if dialect == "mysql":
        # MODIFY restates the whole column: keep its NULL-ability and default.
        default = f" DEFAULT {column.default}" if column.default is not None else ""
        return f"ALTER TABLE {table} MODIFY COLUMN {col} DECIMAL(12, 2){'' if column.nullable else ' NOT NULL'}{default};"
    return ""  # SQLite cannot change a column's type in place


def _identity_type(column: Column) -> str:
    text = column.type.lower()
    return "bigint" if "big" in text else "smallint" if "small" in text else "integer"


def _nullable_unique(table: Table, dialect: str) -> Iterator[DbFinding]:
    seen: set[tuple[str, ...]] = set()
    for index in table.indexes:
        if not index.unique or index.origin == "primary_key" or index.where is not None or index.nulls_not_distinct:
            continue
        nullable = [k for k, expr in zip(index.keys, index.expression_keys, strict=False)
                    if not expr and (c := table.column(k)) is not None and c.nullable]
        if not nullable or tuple(index.keys) in seen:
            continue
        seen.add(tuple(index.keys))
        keys = ", ".join(index.keys)
        sql = " ".join(f"ALTER TABLE {qualified(table.name, dialect)} ALTER COLUMN {quote(c, dialect)} SET NOT NULL;"
                       for c in nullable) if dialect == "postgres" else ""
        yield DbFinding(
            "nullable-unique",
            f"unique ({keys}) on {table.name} allows NULL in {', '.join(nullable)}: NULLs are never equal, so rows that "
            "look duplicate are accepted", table=table.name, column=", ".join(nullable), index=index.name,
            file=index.source.file, line=index.source.line, sql=sql,
            hint="Make the columns NOT NULL, or (PostgreSQL 15+) declare the constraint UNIQUE NULLS NOT DISTINCT.")
