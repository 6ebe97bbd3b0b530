"""Database Analyzer against a real PostgreSQL 15: catalog introspection, and every suggested CREATE INDEX runs."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from services.agents.base import NamedObject, RunContext
from services.agents.database import agent
from services.agents.database.analysis import DatabaseAnalysis, analyse_ddl, analyse_postgres
from services.runtime.errors import InvalidArgument, Unavailable
from tests.postgres import PostgresServer, pg_binary

FIXTURES = Path(__file__).parent.parent / "fixtures" / "database"
SHOP = (FIXTURES / "shop_postgres.sql").read_text()
QUERIES = (FIXTURES / "shop_queries.sql").read_text()


def _fresh_database(server: PostgresServer, name: str) -> str:
    with psycopg.connect(server.dsn, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name}")
        connection.execute(f"CREATE DATABASE {name}")
    with psycopg.connect(server.database_dsn(name), autocommit=True) as connection:
        connection.execute(SHOP)
    return server.database_dsn(name)


@pytest.fixture
def shop_dsn(postgres: PostgresServer) -> Iterator[str]:
    yield _fresh_database(postgres, "shop")


def _keyed(analysis: DatabaseAnalysis) -> list[tuple[str, str, str, str]]:
    return sorted((f.rule, f.table, f.column, f.index) for f in analysis.findings if f.rule != "parse-error")


def test_live_catalog_gives_the_same_schema_findings_as_the_ddl(shop_dsn: str) -> None:
    live = analyse_postgres(shop_dsn, "shop")
    from_ddl = analyse_ddl([("shop_postgres.sql", SHOP)], "postgres")
    assert _keyed(live) == _keyed(from_ddl)
    orders = live.schema.table("orders")
    assert orders is not None
    partial = next(ix for ix in orders.indexes if ix.name == "orders_open_idx")
    assert partial.where == "status = 'open'::text" and partial.keys == ("placed_at",)
    customers = live.schema.table("customers")
    assert customers is not None
    expression = next(ix for ix in customers.indexes if ix.name == "customers_lower_email_idx")
    assert expression.keys == ("lower(email::text)",) and expression.expression_keys == (True,)
    assert [(c.name, c.family, c.nullable) for c in customers.columns] == [
        ("id", "serial", False), ("email", "text", True), ("name", "text", False), ("created_at", "timestamp", False)]


def test_every_suggested_create_index_runs_on_postgres(shop_dsn: str) -> None:
    live = analyse_postgres(shop_dsn, "shop", queries=[("shop_queries.sql", QUERIES)])
    from_ddl = analyse_ddl([("shop_postgres.sql", SHOP)], "postgres", [("shop_queries.sql", QUERIES)])
    statements = list(dict.fromkeys(live.index_statements + from_ddl.index_statements))
    assert len(statements) == 4
    with psycopg.connect(shop_dsn, autocommit=True) as connection:
        for statement in statements:
            connection.execute(statement)  # raises on any statement PostgreSQL refuses
        created = {row[0] for row in connection.execute("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")}
    assert {"orders_customer_id_idx", "customers_upper_name_idx", "products_title_trgm_idx", "orders_placed_at_idx"} <= created
    # With the suggestions applied, the findings they answer are gone.
    after = analyse_postgres(shop_dsn, "shop", queries=[("shop_queries.sql", QUERIES)])
    answered = {"fk-without-index", "unindexed-filter", "leading-wildcard-like"}
    assert [f for f in after.findings if f.rule in answered] == []
    assert [(f.rule, f.line) for f in after.findings if f.rule == "non-sargable-predicate"] == [("non-sargable-predicate", 16)]


def test_agent_reads_a_configured_connection_by_name(shop_dsn: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    url = "postgresql://postgres@127.0.0.1:{}/shop".format(shop_dsn.split("port=")[1].split()[0])
    monkeypatch.setenv("MCPMESH_DATABASE_CONNECTIONS", json.dumps({"shop": url}))
    result = agent.run({"connection": "shop", "schemas": ["public"]}, RunContext(roots=(tmp_path,)))
    located = {(f.rule_id, f.location.name) for f in result.findings if isinstance(f.location, NamedObject)}
    assert ("fk-without-index", "orders.customer_id") in located
    assert ("missing-primary-key", "order_items") in located
    assert result.metrics["tables"] == 5
    # A schema finding has one fingerprint whether it came from the live catalog or from the DDL file.
    from_file = agent.run({"ddl": ["shop_postgres.sql"]}, RunContext(roots=(FIXTURES,)))
    assert sorted(f.fingerprint for f in result.findings) == sorted(f.fingerprint for f in from_file.findings)
    with pytest.raises(InvalidArgument) as refused:
        agent.run({"connection": "postgresql://postgres@127.0.0.1/shop"}, RunContext(roots=(tmp_path,)))
    assert refused.value.violations[0].field == "input.connection"
    assert "postgresql://" not in refused.value.message  # a DSN given as a name is not echoed back
    with pytest.raises(InvalidArgument) as unknown:
        agent.run({"connection": "shop", "schemas": ["public", "nope"]}, RunContext(roots=(tmp_path,)))
    assert unknown.value.violations[0].field == "input.schemas[1]"


def test_connections_can_be_given_to_the_spec(shop_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MCPMESH_DATABASE_CONNECTIONS", raising=False)
    url = "postgresql://postgres@127.0.0.1:{}/shop".format(shop_dsn.split("port=")[1].split()[0])
    result = agent.spec({"shop": url}).run({"connection": "shop"}, RunContext(roots=(tmp_path,)))
    assert result.metrics["tables"] == 5
    with pytest.raises(InvalidArgument):
        agent.SPEC.run({"connection": "shop"}, RunContext(roots=(tmp_path,)))


def test_unreachable_connection_is_unavailable_without_the_password(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                                    postgres: PostgresServer) -> None:
    url = f"postgresql://postgres:s3cret@127.0.0.1:{postgres.port}/no_such_database"
    monkeypatch.setenv("MCPMESH_DATABASE_CONNECTIONS", json.dumps({"gone": url}))
    with pytest.raises(Unavailable) as failed:
        agent.run({"connection": "gone"}, RunContext(roots=(tmp_path,)))
    assert "s3cret" not in failed.value.message and "no_such_database" in failed.value.message


def test_pg_dump_schema_reads_like_the_original_ddl(shop_dsn: str, postgres: PostgresServer) -> None:
    # pg_dump writes serials as integer + sequence + SET DEFAULT nextval, identities as ALTER ... ADD GENERATED,
    # keys as ALTER TABLE ONLY ... ADD CONSTRAINT, and psql meta-commands: the same schema must come out.
    dumped = subprocess.run([pg_binary("pg_dump"), "--schema-only", "-h", "127.0.0.1", "-p", str(postgres.port),
                             "-U", "postgres", "shop"], capture_output=True, text=True, timeout=60, check=True).stdout
    from_dump = analyse_ddl([("shop_dump.sql", dumped)], "postgres")
    assert _keyed(from_dump) == _keyed(analyse_ddl([("shop_postgres.sql", SHOP)], "postgres"))
    assert [f for f in from_dump.findings if f.rule == "parse-error"] == []
