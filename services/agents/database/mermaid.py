"""The schema as a Mermaid entity-relationship diagram (erDiagram), stable for the same schema."""

from __future__ import annotations

import re

from services.agents.database.model import ForeignKey, Schema, Table


def _name(text: str) -> str:
    # Mermaid entity and attribute names are words: anything else (dots of schema.table, spaces) becomes "_".
    cleaned = re.sub(r"[^A-Za-z0-9_]+", "_", text).strip("_") or "_"
    return f"_{cleaned}" if cleaned[0].isdigit() else cleaned  # a Mermaid name starts with a letter or "_"


def _type(text: str) -> str:
    base = text.split("(")[0].strip().lower() or "untyped"
    return _name(base.replace(" ", "_"))


def _unique_columns(table: Table) -> set[str]:
    return {ix.keys[0].lower() for ix in table.indexes if ix.unique and len(ix.keys) == 1 and ix.where is None}


def _cardinality(table: Table, fk: ForeignKey) -> str:
    """Parent side, then child side: exactly one or zero-or-one parent; many children, or at most one when unique."""
    nullable = any((c := table.column(name)) is None or c.nullable for name in fk.columns)
    parent = "|o" if nullable else "||"
    one_child = len(fk.columns) == 1 and fk.columns[0].lower() in _unique_columns(table)
    return f"{parent}--{'o|' if one_child else 'o{'}"


def er_diagram(schema: Schema) -> str:
    """`erDiagram` with one entity per table (columns with PK/FK/UK marks) and one line per foreign key."""
    lines = ["erDiagram"]
    for table in schema.tables:
        keys = {c.lower() for c in table.primary_key}
        foreign = {c.lower() for fk in table.foreign_keys for c in fk.columns}
        unique = _unique_columns(table)
        lines.append(f"    {_name(table.name)} {{")
        for column in table.columns:
            marks = [m for m, on in (("PK", column.name.lower() in keys), ("FK", column.name.lower() in foreign),
                                     ("UK", column.name.lower() in unique and column.name.lower() not in keys)) if on]
            note = "" if column.nullable or column.name.lower() in keys else ' "not null"'
            lines.append(f"        {_type(column.type)} {_name(column.name)}{' ' + ', '.join(marks) if marks else ''}{note}")
        lines.append("    }")
    for table in schema.tables:
        for fk in table.foreign_keys:
            label = ", ".join(fk.columns).replace('"', "'")
            lines.append(f'    {_name(fk.ref_table)} {_cardinality(table, fk)} {_name(table.name)} : "{label}"')
    return "\n".join(lines) + "\n"
