"""Dialect-free type families, so the rules need not know how each dialect spells a type."""

from __future__ import annotations

from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.expressions.datatypes import DType

DT = DType

_FAMILIES: dict[str, frozenset[DType]] = {
    "serial": frozenset({DT.SERIAL, DT.BIGSERIAL, DT.SMALLSERIAL}),
    "timestamp": frozenset({DT.TIMESTAMP, DT.TIMESTAMPNTZ, DT.DATETIME, DT.DATETIME64}),
    "timestamptz": frozenset({DT.TIMESTAMPTZ, DT.TIMESTAMPLTZ}),
    "float": frozenset({DT.FLOAT, DT.DOUBLE}),
    "money": frozenset({DT.MONEY, DT.SMALLMONEY}),
    "decimal": frozenset({DT.DECIMAL, DT.BIGDECIMAL, DT.UDECIMAL}),
    "integer": frozenset({DT.TINYINT, DT.SMALLINT, DT.MEDIUMINT, DT.INT, DT.BIGINT, DT.UTINYINT, DT.USMALLINT,
                          DT.UMEDIUMINT, DT.UINT, DT.UBIGINT, DT.INT128, DT.INT256}),
    "text": frozenset({DT.CHAR, DT.NCHAR, DT.VARCHAR, DT.NVARCHAR, DT.TEXT, DT.MEDIUMTEXT, DT.LONGTEXT, DT.TINYTEXT,
                       DT.BPCHAR, DT.NAME}),
    "uuid": frozenset({DT.UUID}),
    "boolean": frozenset({DT.BOOLEAN}),
    "json": frozenset({DT.JSON, DT.JSONB}),
}
_BY_TYPE = {member: family for family, members in _FAMILIES.items() for member in members}


def family_of(data_type: exp.DataType | None) -> str:
    """The family of a parsed type; a column without a type (SQLite allows it) is "untyped"."""
    if data_type is None:
        return "untyped"
    return _BY_TYPE.get(data_type.this, data_type.this.name.lower())


def parse_type(text: str, dialect: str) -> tuple[str, str]:
    """(type as SQL, family) of a type written as text, as catalogs and PRAGMAs report it."""
    if not text.strip():
        return "", "untyped"
    try:
        data_type = exp.DataType.build(text, dialect=dialect)
    except (SqlglotError, ValueError):
        # SQLite accepts any words as a type; keep them, the rules just do not recognise them.
        return text, "other"
    return text, family_of(data_type)
