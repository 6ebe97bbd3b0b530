"""Database Analyzer rules on a PostgreSQL fixture schema and query file with planted problems: exact findings."""

from __future__ import annotations

from pathlib import Path

import sqlglot

from services.agents.database.analysis import DatabaseAnalysis, analyse_ddl
from services.agents.database.findings import RULES

FIXTURES = Path(__file__).parent.parent / "fixtures" / "database"


def shop() -> DatabaseAnalysis:
    return analyse_ddl([("shop_postgres.sql", (FIXTURES / "shop_postgres.sql").read_text())], "postgres",
                       [("shop_queries.sql", (FIXTURES / "shop_queries.sql").read_text())])


def test_schema_findings_are_the_planted_ones() -> None:
    found = [(f.rule, f.table, f.column, f.index, f.line) for f in shop().findings if f.file == "shop_postgres.sql"]
    assert found == [
        ("timestamp-without-time-zone", "customers", "created_at", "", 8),
        ("duplicate-index", "customers", "email", "customers_email_idx", 37),
        ("nullable-unique", "customers", "email", "customers_email_key", 6),
        ("serial-over-identity", "customers", "id", "", 5),
        ("missing-primary-key", "order_items", "", "", 26),
        ("redundant-index", "order_items", "order_id", "order_items_order_idx", 33),
        ("implied-relationship", "order_items", "product_id", "", 28),
        ("fk-without-index", "orders", "customer_id", "", 21),
        ("duplicate-index", "orders", "status", "orders_status_idx2", 36),
        ("float-for-money", "products", "price", "", 15),
    ]


def test_query_findings_are_the_planted_ones() -> None:
    found = [(f.rule, f.line, f.table, f.column) for f in shop().findings if f.file == "shop_queries.sql"]
    assert found == [
        ("select-star", 2, "", ""),
        ("non-sargable-predicate", 4, "customers", "name"),
        ("leading-wildcard-like", 5, "products", "title"),
        ("update-without-where", 7, "products", ""),
        ("delete-without-where", 8, "order_items", ""),
        ("unindexed-filter", 13, "orders", "placed_at"),
        ("non-sargable-predicate", 16, "orders", "placed_at"),
    ]


def test_index_suggestions_are_create_index_statements() -> None:
    analysis = shop()
    assert analysis.index_statements == [
        "CREATE INDEX IF NOT EXISTS orders_customer_id_idx ON orders (customer_id);",
        "CREATE INDEX IF NOT EXISTS customers_upper_name_idx ON customers ((UPPER(name)));",
        "CREATE EXTENSION IF NOT EXISTS pg_trgm; "
        "CREATE INDEX IF NOT EXISTS products_title_trgm_idx ON products USING gin (title gin_trgm_ops);",
        "CREATE INDEX IF NOT EXISTS orders_placed_at_idx ON orders (placed_at);",
    ]
    for statement in analysis.index_statements:
        assert all(sqlglot.parse(statement, read="postgres"))


def test_other_fixes_are_statements_too() -> None:
    by_rule = {(f.rule, f.table): f.sql for f in shop().findings}
    assert by_rule[("duplicate-index", "orders")] == "DROP INDEX orders_status_idx2;"
    assert by_rule[("implied-relationship", "order_items")] == (
        "ALTER TABLE order_items ADD CONSTRAINT order_items_product_id_fkey FOREIGN KEY (product_id) REFERENCES products (id);")
    assert by_rule[("float-for-money", "products")] == "ALTER TABLE products ALTER COLUMN price TYPE numeric(12, 2);"


def test_expression_index_makes_its_predicate_sargable() -> None:
    # customers_lower_email_idx covers lower(email): line 3 of the query file has no finding.
    assert not [f for f in shop().findings if f.file == "shop_queries.sql" and f.line == 3]


def test_clean_schema_has_no_findings() -> None:
    ddl = """
    CREATE TABLE teams (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL UNIQUE);
    CREATE TABLE players (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        team_id bigint NOT NULL REFERENCES teams (id),
        joined_at timestamptz NOT NULL,
        salary numeric(12, 2) NOT NULL,
        active boolean NOT NULL
    );
    CREATE INDEX players_team_idx ON players (team_id, joined_at);
    """
    analysis = analyse_ddl([("clean.sql", ddl)], "postgres", [("q.sql", "SELECT id, salary FROM players WHERE team_id = 7;\n"
                                                                  "SELECT name FROM teams WHERE name = 'x' OR id IN (1, 2);\n"
                                                                  "SELECT id FROM players WHERE active = true;")])
    assert analysis.findings == []


def test_unparsable_statement_is_reported_at_its_line_and_the_rest_is_read() -> None:
    ddl = "CREATE TABLE a (id int PRIMARY KEY);\n\nCREATE TABLE (broken;\nCREATE TABLE b (id int PRIMARY KEY);\n"
    analysis = analyse_ddl([("broken.sql", ddl)], "postgres")
    assert [(f.rule, f.file, f.line) for f in analysis.findings] == [("parse-error", "broken.sql", 3)]
    assert [t.name for t in analysis.schema.tables] == ["a", "b"]


def test_quoted_and_schema_qualified_names_are_kept_and_quoted_in_fixes() -> None:
    ddl = 'CREATE TABLE billing."Invoice" ("Id" int PRIMARY KEY, "CustomerId" int REFERENCES customers);\n' \
          "CREATE TABLE customers (id int PRIMARY KEY);\n"
    analysis = analyse_ddl([("q.sql", ddl)], "postgres")
    fk = [f for f in analysis.findings if f.rule == "fk-without-index"]
    assert [(f.table, f.column) for f in fk] == [("billing.Invoice", "CustomerId")]
    assert fk[0].sql == 'CREATE INDEX IF NOT EXISTS invoice_customerid_idx ON billing."Invoice" ("CustomerId");'


def test_every_rule_has_a_severity_from_the_one_list() -> None:
    from services.agents.base import SEVERITIES

    assert {severity for severity, _, _ in RULES.values()} <= set(SEVERITIES)


ODD_DDL = [
    "", "-- only a comment\n/* and a block */", "\x00\x01 garbage ;;; ;", "SELECT 'unterminated",
    "CREATE VIEW v AS SELECT * FROM t;", "CREATE FUNCTION f() RETURNS trigger AS $$ BEGIN RETURN NEW; END $$ LANGUAGE plpgsql;",
    "CREATE TYPE mood AS ENUM ('a', 'b'); CREATE TABLE t (id int PRIMARY KEY, m mood);", "CREATE TABLE t AS SELECT 1 AS x;",
    "CREATE TABLE m (id int, at date) PARTITION BY RANGE (at);", "CREATE TABLE c (PRIMARY KEY (x));",
    "CREATE INDEX i ON nowhere (x);", "ALTER TABLE nowhere ADD COLUMN x int;", "DROP TABLE IF EXISTS a, b CASCADE;",
    'CREATE TABLE "WeIrD ""name" ("Id" int PRIMARY KEY, "select" int UNIQUE);', "GRANT SELECT ON t TO public; BEGIN; COMMIT;",
    "SELECT " + "(" * 40 + "1" + ")" * 40 + ";",
]
ODD_QUERIES = [
    "WITH x AS (SELECT * FROM t) SELECT a FROM x WHERE a = 1;", "INSERT INTO t SELECT * FROM u;",
    "MERGE INTO t USING u ON t.a = u.a WHEN MATCHED THEN UPDATE SET b = 1;", "UPDATE t SET a = 1 FROM u WHERE t.b = u.b;",
    "DELETE FROM t USING u WHERE t.a = u.a;", "SELECT a FROM t WHERE a LIKE $1 OR a ILIKE '%x';", "TRUNCATE t;",
    "SELECT a FROM t WHERE (a, b) IN (SELECT 1, 2);", "select a from t where coalesce(a, 0) = 0 and a::text = '1';",
]


def test_odd_input_gives_findings_never_an_exception() -> None:
    for dialect in ("postgres", "mysql", "sqlite"):
        for ddl in ODD_DDL:
            analysis = analyse_ddl([("odd.sql", ddl)], dialect, [("q.sql", "\n".join(ODD_QUERIES))])
            assert all(f.file in ("odd.sql", "q.sql", "") for f in analysis.findings)
    deep = analyse_ddl([("deep.sql", "SELECT " + "(" * 40 + "1" + ")" * 40 + ";")], "postgres")
    assert [(f.rule, f.line, f.message) for f in deep.findings] == [
        ("parse-error", 1, "nested deeper than 32 parentheses, statement skipped")]
    wrong = analyse_ddl([("w.sql", "CREATE INDEX i ON nowhere (x);\n")], "postgres")
    assert [(f.rule, f.line) for f in wrong.findings] == [("parse-error", 1)]


def test_implied_relationships_need_an_id_word_and_a_matching_key() -> None:
    ddl = """
    CREATE TABLE categories (id int PRIMARY KEY);
    CREATE TABLE customers (id int PRIMARY KEY);
    CREATE TABLE people (id int PRIMARY KEY);
    CREATE TABLE pa (id int PRIMARY KEY);
    CREATE TABLE items (id int PRIMARY KEY, category_id int, "ownerPersonId" int, paid int, people_id uuid, item_id int);
    CREATE TABLE "Orders" ("Id" int PRIMARY KEY, "CustomerID" int);
    """
    analysis = analyse_ddl([("implied.sql", ddl)], "postgres")
    implied = [(f.table, f.column, f.sql) for f in analysis.findings if f.rule == "implied-relationship"]
    # paid is not pa + id; people_id is a uuid and people.id an integer; item_id is a reference to its own table.
    assert implied == [
        ("Orders", "CustomerID",
         'ALTER TABLE "Orders" ADD CONSTRAINT orders_customerid_fkey FOREIGN KEY ("CustomerID") REFERENCES customers (id);'),
        ("items", "category_id",
         "ALTER TABLE items ADD CONSTRAINT items_category_id_fkey FOREIGN KEY (category_id) REFERENCES categories (id);"),
        ("items", "item_id", "ALTER TABLE items ADD CONSTRAINT items_item_id_fkey FOREIGN KEY (item_id) REFERENCES items (id);"),
    ]


def test_postgres_keeps_names_that_differ_only_in_case_apart() -> None:
    ddl = 'CREATE TABLE t (id int PRIMARY KEY, email text, "Email" text NOT NULL);\nCREATE TABLE "T" (id int);\n'
    analysis = analyse_ddl([("case.sql", ddl)], "postgres")
    assert [t.name for t in analysis.schema.tables] == ["t", "T"]
    t = analysis.schema.table("t")
    assert t is not None and [(c.name, c.nullable) for c in t.columns] == [("id", False), ("email", True), ("Email", False)]
    assert [(f.rule, f.table) for f in analysis.findings] == [("missing-primary-key", "T")]
    # MySQL and SQLite match names in any case: the second declaration replaces the first.
    assert [t.name for t in analyse_ddl([("case.sql", "CREATE TABLE t (id int);\nCREATE TABLE T (id int PRIMARY KEY);")],
                                        "sqlite").schema.tables] == ["T"]
