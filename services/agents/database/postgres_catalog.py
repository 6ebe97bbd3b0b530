"""Build the schema model from a live PostgreSQL catalog (pg_catalog), in a read-only transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from services.agents.database.column_types import parse_type
from services.agents.database.model import Check, Column, ForeignKey, Index, Schema, Source, Table

_ON_DELETE = {"a": None, "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}
_SERIALS = {"integer": "serial", "bigint": "bigserial", "smallint": "smallserial"}

_TABLES = """
SELECT c.oid, n.nspname, c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%%'
  AND (%(schemas)s::text[] IS NULL OR n.nspname = ANY(%(schemas)s::text[]))
ORDER BY n.nspname, c.relname
"""
_COLUMNS = """
SELECT a.attrelid, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(d.adbin, d.adrelid),
       a.attidentity <> '',
       a.attidentity = '' AND pg_get_serial_sequence(format('%%I.%%I', n.nspname, c.relname), a.attname) IS NOT NULL
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid = ANY(%(oids)s) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum
"""
_CONSTRAINTS = """
SELECT con.conrelid, con.conname, con.contype,
       ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(num, pos)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.num ORDER BY k.pos),
       rn.nspname, rc.relname,
       ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY k(num, pos)
             JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.num ORDER BY k.pos),
       con.confdeltype, pg_get_constraintdef(con.oid, true)
FROM pg_constraint con
LEFT JOIN pg_class rc ON rc.oid = con.confrelid LEFT JOIN pg_namespace rn ON rn.oid = rc.relnamespace
WHERE con.conrelid = ANY(%(oids)s) AND con.contype IN ('p', 'f', 'c')
ORDER BY con.conrelid, con.conname
"""
_INDEXES = """
SELECT i.indrelid, ic.relname, i.indisunique,
       ARRAY(SELECT CASE WHEN i.indkey[k - 1] = 0 THEN pg_get_indexdef(i.indexrelid, k, true)
                    ELSE (SELECT a.attname FROM pg_attribute a WHERE a.attrelid = i.indrelid AND a.attnum = i.indkey[k - 1])
                    END
             FROM generate_series(1, i.indnkeyatts) k ORDER BY k),
       ARRAY(SELECT i.indkey[k - 1] = 0 FROM generate_series(1, i.indnkeyatts) k ORDER BY k),
       pg_get_expr(i.indpred, i.indrelid, true), am.amname, {nulls_not_distinct}, con.contype
FROM pg_index i
JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_am am ON am.oid = ic.relam
LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid AND con.contype IN ('p', 'u', 'x')
WHERE i.indrelid = ANY(%(oids)s)
ORDER BY i.indrelid, ic.relname
"""


class UnknownSchema(LookupError):
    """A schema asked for does not exist in the database; `position` is its index in the request."""

    def __init__(self, position: int, name: str) -> None:
        super().__init__(f"schema {name!r} does not exist in this database")
        self.position = position


def _name(schema: str, table: str) -> str:
    return table if schema == "public" else f"{schema}.{table}"


def connect(dsn: str, timeout: float = 10.0) -> psycopg.Connection[Any]:
    """A connection whose transactions are read-only and whose statements time out: introspection changes nothing."""
    options = f"-c default_transaction_read_only=on -c statement_timeout={int(timeout * 1000)}"
    return psycopg.connect(dsn, connect_timeout=max(1, int(timeout)), options=options, autocommit=False)


def schema_from_postgres(connection: psycopg.Connection[Any], label: str, schemas: Sequence[str] = ()) -> Schema:
    """The tables of `schemas` (every user schema when empty) as the catalog describes them."""
    schema = Schema("postgres", origin=label)
    source = Source()
    with connection.cursor() as cursor:
        if schemas:
            cursor.execute("SELECT nspname FROM pg_namespace WHERE nspname = ANY(%(schemas)s::text[])", {"schemas": list(schemas)})
            found = {row[0] for row in cursor.fetchall()}
            missing = [position for position, name in enumerate(schemas) if name not in found]
            if missing:
                raise UnknownSchema(missing[0], schemas[missing[0]])
        cursor.execute(_TABLES, {"schemas": list(schemas) or None})
        tables: dict[int, Table] = {oid: Table(_name(nsp, rel), source=source) for oid, nsp, rel in cursor.fetchall()}
        oids = list(tables)
        cursor.execute(_COLUMNS, {"oids": oids})
        for oid, name, type_text, notnull, default, identity, serial in cursor.fetchall():
            type_text, family = parse_type(type_text, "postgres")
            if serial:
                type_text, family = _SERIALS.get(type_text, type_text), "serial"
            tables[oid].columns.append(Column(name, type_text, family, nullable=not notnull, default=default,
                                              identity=identity or serial, source=source))
        cursor.execute(_CONSTRAINTS, {"oids": oids})
        for oid, name, kind, columns, ref_schema, ref_table, ref_columns, on_delete, definition in cursor.fetchall():
            table = tables[oid]
            if kind == "p":
                table.primary_key = tuple(columns)
            elif kind == "f":
                table.foreign_keys.append(ForeignKey(name, table.name, tuple(columns), _name(ref_schema, ref_table),
                                                     tuple(ref_columns), on_delete=_ON_DELETE.get(on_delete), source=source))
            else:
                table.checks.append(Check(name, definition.removeprefix("CHECK ")))
        version = connection.info.server_version
        cursor.execute(_INDEXES.format(nulls_not_distinct="i.indnullsnotdistinct" if version >= 150000 else "false"),
                       {"oids": oids})
        origins = {"p": "primary_key", "u": "unique", "x": "index"}
        for oid, name, unique, keys, expressions, where, method, nulls_not_distinct, constraint in cursor.fetchall():
            table = tables[oid]
            table.indexes.append(Index(name, table.name, tuple(keys), unique=unique, origin=origins.get(constraint or "", "index"),
                                       where=where, method=method, expression_keys=tuple(expressions),
                                       nulls_not_distinct=nulls_not_distinct, source=source))
    connection.rollback()
    schema.tables = list(tables.values())
    return schema
