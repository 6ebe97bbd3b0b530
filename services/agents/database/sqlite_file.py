"""Build the schema model from a SQLite database file, read-only, through its PRAGMAs."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import quote as url_quote

from services.agents.database.column_types import parse_type
from services.agents.database.ddl import SchemaBuilder
from services.agents.database.model import Column, ForeignKey, Index, Schema, Source, Table
from services.agents.database.statements import split_statements

SQLITE_HEADER = b"SQLite format 3\x00"
_ORIGINS = {"pk": "primary_key", "u": "unique", "c": "index"}


class NotASqliteDatabase(ValueError):
    """The file is not a SQLite database (its first bytes say so)."""


def _rows(db: sqlite3.Connection, pragma: str, name: str) -> list[tuple[Any, ...]]:
    # PRAGMA arguments cannot be bound parameters; the name is quoted as an SQL string literal instead.
    return db.execute(f"PRAGMA {pragma}('{name.replace(chr(39), chr(39) * 2)}')").fetchall()


def _expression_parts(sql: str | None, table: Table) -> tuple[list[tuple[str, bool]], str | None]:
    """Key texts and WHERE of a CREATE INDEX as sqlglot reads it (for expression and partial indexes)."""
    if not sql:
        return [], None
    statements, _ = split_statements(sql, "sqlite", "")
    builder = SchemaBuilder("sqlite")
    builder.schema.tables.append(Table(table.name))
    builder.apply_all(statements)
    indexes = builder.schema.tables[0].indexes
    if not indexes:
        return [], None
    return list(zip(indexes[0].keys, indexes[0].expression_keys, strict=False)), indexes[0].where


def schema_from_sqlite(path: Path, label: str) -> Schema:
    """The schema of the SQLite database at `path`; `label` is how findings name the file."""
    with path.open("rb") as handle:
        if handle.read(len(SQLITE_HEADER)) != SQLITE_HEADER:
            raise NotASqliteDatabase(f"{label} is not a SQLite database file")
    try:
        db = sqlite3.connect(f"file:{url_quote(str(path))}?mode=ro", uri=True, timeout=5)
        try:
            return _read(db, label)
        finally:
            db.close()
    except sqlite3.Error as exc:
        # A damaged file, or a WAL database whose folder cannot be written: the caller's input, not a crash.
        raise NotASqliteDatabase(f"{label} cannot be read as a SQLite database: {exc}") from None


def _read(db: sqlite3.Connection, label: str) -> Schema:
    schema = Schema("sqlite", origin=label)
    source = Source(label, 0)
    index_sql = dict(db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index'").fetchall())
    names = [r[0] for r in db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY rowid")]
    for name in names:
        table = Table(name, source=source)
        primary: list[tuple[int, str]] = []
        for _cid, column, declared, notnull, default, pk, hidden in _rows(db, "table_xinfo", name):
            if hidden == 1:
                continue  # a virtual table's hidden column
            type_text, family = parse_type(declared or "", "sqlite")
            rowid_alias = pk == 1 and (declared or "").upper() == "INTEGER"
            table.columns.append(Column(column, type_text, family, nullable=not notnull and not pk, default=default,
                                        identity=rowid_alias, source=source))
            if pk:
                primary.append((pk, column))
        table.primary_key = tuple(c for _, c in sorted(primary))
        for _seq, index, unique, origin, _partial in _rows(db, "index_list", name):
            keys = [(c, cid == -2) for _n, cid, c, _d, _coll, key in _rows(db, "index_xinfo", index) if key]
            parsed, where = _expression_parts(index_sql.get(index), table)
            if len(parsed) == len(keys):
                keys = [(text if is_expr else column, is_expr) for (column, is_expr), (text, _) in zip(keys, parsed, strict=True)]
            table.indexes.append(Index(index, name, tuple(k or "" for k, _ in keys), unique=bool(unique),
                                       origin=_ORIGINS.get(origin, "index"), where=where,
                                       expression_keys=tuple(e for _, e in keys), source=source))
        if table.primary_key and not any(ix.origin == "primary_key" for ix in table.indexes):
            # INTEGER PRIMARY KEY is the rowid itself: the table is stored in its order, as good as an index.
            table.indexes.insert(0, Index(f"{name}_pkey", name, table.primary_key, unique=True, origin="primary_key",
                                          expression_keys=(False,) * len(table.primary_key), source=source))
        references: dict[int, list[tuple[Any, ...]]] = {}
        for row in _rows(db, "foreign_key_list", name):
            references.setdefault(row[0], []).append(row)
        for rows in references.values():
            rows.sort(key=lambda r: r[1])
            targets = tuple(r[4] for r in rows if r[4] is not None)
            table.foreign_keys.append(ForeignKey(None, name, tuple(r[3] for r in rows), rows[0][2], targets,
                                                 on_delete=None if rows[0][6] == "NO ACTION" else rows[0][6], source=source))
        schema.tables.append(table)
    for table in schema.tables:
        for position, fk in enumerate(table.foreign_keys):
            if not fk.ref_columns and (parent := schema.table(fk.ref_table)) is not None:
                table.foreign_keys[position] = ForeignKey(fk.name, fk.table, fk.columns, fk.ref_table, parent.primary_key,
                                                          on_delete=fk.on_delete, source=fk.source)
    return schema

