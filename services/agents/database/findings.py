"""The Database Analyzer's finding: a rule broken at a table or column (schema) or at a file and line (queries)."""

from __future__ import annotations

from dataclasses import dataclass

# rule id -> (severity, category, what it means); the one list of what this analyzer reports.
RULES: dict[str, tuple[str, str, str]] = {
    "parse-error": ("medium", "syntax", "a statement could not be parsed and was skipped"),
    "missing-primary-key": ("high", "schema", "a table without a primary key"),
    "fk-without-index": ("medium", "performance", "a foreign key no index leads with: parent deletes and joins scan"),
    "duplicate-index": ("medium", "performance", "two indexes with the same keys, predicate and method"),
    "redundant-index": ("low", "performance", "an index whose keys lead another index of the same kind"),
    "implied-relationship": ("medium", "schema", "a column named like a reference to another table, without a foreign key"),
    "timestamp-without-time-zone": ("medium", "schema", "a timestamp that does not say which time zone it is in"),
    "float-for-money": ("high", "schema", "a binary floating-point type for an amount of money"),
    "serial-over-identity": ("low", "schema", "serial instead of a standard identity column"),
    "nullable-unique": ("low", "schema", "a unique column that allows several NULLs"),
    "select-star": ("low", "query", "SELECT * reads every column, and breaks when columns change"),
    "update-without-where": ("high", "query", "an UPDATE without WHERE changes every row"),
    "delete-without-where": ("high", "query", "a DELETE without WHERE removes every row"),
    "non-sargable-predicate": ("medium", "performance", "a predicate that wraps a column, so no plain index on it can be used"),
    "leading-wildcard-like": ("medium", "performance", "LIKE with a leading wildcard, which no B-tree index can serve"),
    "unindexed-filter": ("low", "performance", "a query filters or joins on a column no index leads with"),
}
# Rules about statements in query files: their findings are at a file and line, not at a schema object.
QUERY_RULES = frozenset({"select-star", "update-without-where", "delete-without-where", "non-sargable-predicate",
                         "leading-wildcard-like", "unindexed-filter"})


@dataclass(frozen=True)
class DbFinding:
    """One finding; `table`/`column` name the schema object, `file`/`line` the statement, `sql` a runnable fix."""

    rule: str
    message: str
    table: str = ""
    column: str = ""
    index: str = ""
    file: str = ""
    line: int = 0
    sql: str = ""  # a statement that fixes it (CREATE INDEX, DROP INDEX, ALTER TABLE), when there is one
    hint: str = ""

    @property
    def severity(self) -> str:
        return RULES[self.rule][0]

    @property
    def category(self) -> str:
        return RULES[self.rule][1]

    def sort_key(self) -> tuple[str, int, str, str, str, str]:
        return (self.file, self.line, self.table, self.column, self.index, self.rule)
