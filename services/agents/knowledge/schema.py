"""Database tables as the code graph needs them (name, columns, foreign keys), converted from the Database Analyzer's model."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Column:
    name: str
    type: str = ""  # as declared, such as "INTEGER" or "varchar(80)"
    nullable: bool = True
    primary_key: bool = False


@dataclass(frozen=True)
class ForeignKey:
    columns: tuple[str, ...]
    table: str  # the referenced table
    referenced_columns: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...] = ()
    foreign_keys: tuple[ForeignKey, ...] = ()


class _ModelColumn(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def nullable(self) -> bool: ...


class _ModelForeignKey(Protocol):
    @property
    def columns(self) -> tuple[str, ...]: ...
    @property
    def ref_table(self) -> str: ...
    @property
    def ref_columns(self) -> tuple[str, ...]: ...


class _ModelTable(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def columns(self) -> Sequence[_ModelColumn]: ...
    @property
    def primary_key(self) -> tuple[str, ...]: ...
    @property
    def foreign_keys(self) -> Sequence[_ModelForeignKey]: ...


def tables_from_model(tables: Iterable[_ModelTable]) -> list[Table]:
    """The tables of a `services.agents.database.model.Schema` (its `.tables`), in their order."""
    return [
        Table(
            t.name,
            tuple(Column(c.name, c.type, c.nullable and c.name not in t.primary_key, c.name in t.primary_key) for c in t.columns),
            tuple(ForeignKey(tuple(k.columns), k.ref_table, tuple(k.ref_columns)) for k in t.foreign_keys),
        )
        for t in tables
    ]
