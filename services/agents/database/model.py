"""The schema model every loader builds: tables, columns, keys, constraints and indexes."""

from __future__ import annotations

from dataclasses import dataclass, field

DIALECTS: tuple[str, ...] = ("postgres", "mysql", "sqlite")


@dataclass(frozen=True)
class Source:
    """Where a schema object was declared: a file and line for DDL, nothing more for a live catalog."""

    file: str = ""
    line: int = 0


@dataclass(frozen=True)
class Column:
    """One column; `type` is the declared type as SQL text, `family` a dialect-free name for the rules."""

    name: str
    type: str
    family: str
    nullable: bool = True
    default: str | None = None
    identity: bool = False
    source: Source = Source()


@dataclass(frozen=True)
class Index:
    """An index; `keys` are column names or, for expression parts, the expression's SQL text."""

    name: str
    table: str
    keys: tuple[str, ...]
    unique: bool = False
    origin: str = "index"  # index | primary_key | unique | foreign_key (an index the database made by itself)
    where: str | None = None
    method: str = "btree"
    expression_keys: tuple[bool, ...] = ()
    nulls_not_distinct: bool = False
    source: Source = Source()

    @property
    def is_partial(self) -> bool:
        return self.where is not None

    @property
    def has_expressions(self) -> bool:
        return any(self.expression_keys)


@dataclass(frozen=True)
class ForeignKey:
    """A declared reference from `columns` of `table` to `ref_columns` of `ref_table`."""

    name: str | None
    table: str
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]
    on_delete: str | None = None
    source: Source = Source()


@dataclass(frozen=True)
class Check:
    """A CHECK constraint and its expression."""

    name: str | None
    expression: str


@dataclass
class Table:
    """A table and everything declared on it; names are as the database sees them (unquoted ones folded)."""

    name: str
    columns: list[Column] = field(default_factory=list)
    primary_key: tuple[str, ...] = ()
    foreign_keys: list[ForeignKey] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    indexes: list[Index] = field(default_factory=list)
    source: Source = Source()

    def column(self, name: str) -> Column | None:
        # The exact name first: PostgreSQL keeps "Email" and email apart; then any case, as MySQL and SQLite match.
        folded = name.lower()
        exact = next((c for c in self.columns if c.name == name), None)
        return exact or next((c for c in self.columns if c.name.lower() == folded), None)


@dataclass
class Schema:
    """All tables of one input, in declaration order, and the dialect their SQL is written in."""

    dialect: str
    tables: list[Table] = field(default_factory=list)
    origin: str = ""  # what was read: file names, a database file or a connection name

    def table(self, name: str) -> Table | None:
        folded = name.lower()
        exact = next((t for t in self.tables if t.name == name), None)
        return exact or next((t for t in self.tables if t.name.lower() == folded), None)
