"""Database tables as the code graph needs them (name, columns, foreign keys), converted from the Database Analyzer's model."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class ForeignKey:
    columns: tuple[str, ...]
    table: str  # the referenced table
    referenced_columns: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[str, ...] = ()
    foreign_keys: tuple[ForeignKey, ...] = ()


class _ModelColumn(Protocol):
    @property
    def name(self) -> str: ...


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
    def foreign_keys(self) -> Sequence[_ModelForeignKey]: ...


def tables_from_model(tables: Iterable[_ModelTable]) -> list[Table]:
    """The tables of a `services.agents.database.model.Schema` (its `.tables`), in their order."""
    return [
        Table(
            t.name,
            tuple(c.name for c in t.columns),
            tuple(ForeignKey(tuple(k.columns), k.ref_table, tuple(k.ref_columns)) for k in t.foreign_keys),
        )
        for t in tables
    ]
