"""Database Analyzer on SQLite and MySQL: DDL fixtures with planted problems, and a real SQLite database file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from services.agents.database.analysis import analyse_ddl, analyse_sqlite
from services.agents.database.sqlite_file import NotASqliteDatabase

FIXTURES = Path(__file__).parent.parent / "fixtures" / "database"
LIBRARY = (FIXTURES / "library_sqlite.sql").read_text()


def test_sqlite_ddl_findings_are_the_planted_ones() -> None:
    analysis = analyse_ddl([("library_sqlite.sql", LIBRARY)], "sqlite")
    assert [(f.rule, f.table, f.column, f.index, f.line) for f in analysis.findings] == [
        ("nullable-unique", "authors", "email", "authors_email_key", 5),
        ("fk-without-index", "books", "author_id", "", 10),
        ("float-for-money", "books", "price", "", 13),
        ("redundant-index", "books", "title", "books_title_idx", 31),
        ("missing-primary-key", "loans", "", "", 17),
        ("duplicate-index", "loans", "book_id", "loans_book_idx", 29),
        ("implied-relationship", "loans", "member_id", "", 19),
    ]
    # SQLite can neither alter a column's type nor add a constraint: those fixes are hints, not statements.
    by_rule = {f.rule: f for f in analysis.findings}
    assert by_rule["float-for-money"].sql == "" and by_rule["implied-relationship"].sql == ""
    assert by_rule["fk-without-index"].sql == "CREATE INDEX IF NOT EXISTS books_author_id_idx ON books (author_id);"


def test_sqlite_database_file_gives_the_same_findings_as_its_ddl(tmp_path: Path) -> None:
    path = tmp_path / "library.db"
    with sqlite3.connect(path) as db:
        db.executescript(LIBRARY)
    db.close()
    from_file = analyse_sqlite(path, "library.db")
    from_ddl = analyse_ddl([("library_sqlite.sql", LIBRARY)], "sqlite")
    assert [(f.rule, f.table, f.column) for f in from_file.findings] == [(f.rule, f.table, f.column) for f in from_ddl.findings]
    loans = from_file.schema.table("loans")
    authors = from_file.schema.table("authors")
    assert loans is not None and authors is not None
    assert next(ix for ix in loans.indexes if ix.name == "loans_open_idx").where == "returned_on IS NULL"
    assert next(ix for ix in authors.indexes if ix.name == "authors_lower_name_idx").keys == ("LOWER(name)",)
    assert [fk.ref_columns for fk in loans.foreign_keys] == [("id",)]


def test_a_file_that_is_not_sqlite_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("CREATE TABLE looks_like_sql (id int);")
    with pytest.raises(NotASqliteDatabase):
        analyse_sqlite(path, "notes.db")
    damaged = tmp_path / "damaged.db"
    damaged.write_bytes(b"SQLite format 3\x00" + b"\xff" * 200)
    with pytest.raises(NotASqliteDatabase, match="cannot be read as a SQLite database"):
        analyse_sqlite(damaged, "damaged.db")


def test_mysql_findings_know_innodb_indexes_foreign_keys() -> None:
    analysis = analyse_ddl([("library_mysql.sql", (FIXTURES / "library_mysql.sql").read_text())], "mysql")
    assert [(f.rule, f.table, f.column, f.index, f.line) for f in analysis.findings] == [
        ("nullable-unique", "customers", "email", "customers_email", 7),
        ("missing-primary-key", "invoice_lines", "", "", 21),
        ("implied-relationship", "invoice_lines", "invoice_id", "", 22),
        ("duplicate-index", "invoice_lines", "invoice_id", "lines_invoice_dup", 26),
        ("float-for-money", "invoices", "amount", "", 13),
        ("redundant-index", "invoices", "status", "invoices_status", 16),
    ]
    # invoices.customer_id has no index of its own, but InnoDB made one for the constraint: no fk-without-index.
    invoices = analysis.schema.table("invoices")
    assert invoices is not None
    assert [(ix.name, ix.origin) for ix in invoices.indexes if ix.origin == "foreign_key"] == [("invoices_customer_fk", "foreign_key")]
    assert {f.sql for f in analysis.findings if f.rule == "duplicate-index"} == {"DROP INDEX lines_invoice_dup ON invoice_lines;"}
    assert {f.sql for f in analysis.findings if f.rule == "float-for-money"} == {
        "ALTER TABLE invoices MODIFY COLUMN amount DECIMAL(12, 2) NOT NULL;"}


def test_migrations_apply_in_order_alter_and_drop_included() -> None:
    migrations = [
        ("V1__init.sql", "CREATE TABLE users (id int PRIMARY KEY, email text);\nCREATE INDEX users_email_idx ON users (email);\n"),
        ("V2__teams.sql", "CREATE TABLE teams (id int PRIMARY KEY);\nALTER TABLE users ADD COLUMN team_id int REFERENCES teams (id);\n"),
        ("V10__tidy.sql", "DROP INDEX users_email_idx;\nCREATE INDEX users_team_idx ON users (team_id);\n"
                          "ALTER TABLE users ALTER COLUMN email SET NOT NULL;\n"),
    ]
    analysis = analyse_ddl(migrations, "postgres")
    users = analysis.schema.table("users")
    assert users is not None
    assert [ix.name for ix in users.indexes] == ["users_pkey", "users_team_idx"]
    assert [(c.name, c.nullable) for c in users.columns] == [("id", False), ("email", False), ("team_id", True)]
    assert analysis.findings == []


def test_without_rowid_tables_are_read() -> None:
    analysis = analyse_ddl([("w.sql", "CREATE TABLE kv (k TEXT PRIMARY KEY, v BLOB) WITHOUT ROWID, STRICT;")], "sqlite")
    assert [(t.name, t.primary_key) for t in analysis.schema.tables] == [("kv", ("k",))]
    assert analysis.findings == []


def test_every_suggested_create_index_runs_on_sqlite(tmp_path: Path) -> None:
    queries = "SELECT title FROM books WHERE price > 10;\nSELECT * FROM loans WHERE upper(lent_on) = 'X';\n"
    analysis = analyse_ddl([("library_sqlite.sql", LIBRARY)], "sqlite", [("q.sql", queries)])
    assert analysis.index_statements == [
        "CREATE INDEX IF NOT EXISTS books_author_id_idx ON books (author_id);",
        "CREATE INDEX IF NOT EXISTS books_price_idx ON books (price);",
        "CREATE INDEX IF NOT EXISTS loans_upper_lent_on_idx ON loans ((UPPER(lent_on)));",
    ]
    path = tmp_path / "library.db"
    db = sqlite3.connect(path)
    try:
        db.executescript(LIBRARY)
        for statement in analysis.index_statements:
            db.execute(statement)
        db.commit()
    finally:
        db.close()
    after = analyse_sqlite(path, "library.db", [("q.sql", queries)])
    assert [f for f in after.findings if f.rule in ("fk-without-index", "unindexed-filter", "non-sargable-predicate")] == []
