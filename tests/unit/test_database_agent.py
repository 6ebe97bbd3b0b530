"""The database-analyzer agent: input checks naming the field, workspace confinement, the common finding record."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from services.agents.base import FileSpan, ModelReply, NamedObject, RunContext
from services.agents.database import agent
from services.runtime.errors import InvalidArgument

FIXTURES = Path(__file__).parent.parent / "fixtures" / "database"


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "workspace"
    (root / "db" / "queries").mkdir(parents=True)
    shutil.copy(FIXTURES / "shop_postgres.sql", root / "db" / "shop.sql")
    shutil.copy(FIXTURES / "shop_queries.sql", root / "db" / "queries" / "shop_queries.sql")
    return root


def refused(arguments: dict[str, object], root: Path) -> str:
    with pytest.raises(InvalidArgument) as error:
        agent.run(arguments, RunContext(roots=(root,)))
    return error.value.violations[0].field


def test_run_returns_common_findings_at_objects_and_lines(workspace: Path) -> None:
    result = agent.run({"ddl": [str(workspace / "db" / "shop.sql")], "queries": ["db/queries"]},
                       RunContext(roots=(workspace,)))
    by_rule = {}
    for finding in result.findings:
        by_rule.setdefault(finding.rule_id, []).append(finding.location)
    assert by_rule["missing-primary-key"] == [NamedObject("table", "order_items")]
    assert by_rule["fk-without-index"] == [NamedObject("column", "orders.customer_id")]
    assert by_rule["duplicate-index"] == [NamedObject("index", "customers.customers_email_idx"),
                                          NamedObject("index", "orders.orders_status_idx2")]
    assert by_rule["select-star"] == [FileSpan("db/queries/shop_queries.sql", 2)]
    assert by_rule["update-without-where"] == [FileSpan("db/queries/shop_queries.sql", 7)]
    fk = next(f for f in result.findings if f.rule_id == "fk-without-index")
    assert fk.tool == "database-analyzer" and fk.severity == "medium" and fk.category == "performance"
    assert fk.fix_hint == ("CREATE INDEX IF NOT EXISTS orders_customer_id_idx ON orders (customer_id);\n"
                           "-- On a busy table, run it as CREATE INDEX CONCURRENTLY, outside a transaction, so writes are not blocked.")
    assert fk.snippet == "customer_id integer NOT NULL REFERENCES customers (id),"
    assert len({f.fingerprint for f in result.findings}) == len(result.findings)
    names = [a.name for a in result.artifacts]
    assert names == ["report.md", "schema.mmd", "schema.json", "fixes.sql"]
    assert "```mermaid\nerDiagram" in result.artifacts[0].content
    assert result.metrics["tables"] == 5 and result.metrics["index_suggestions"] == 4
    assert result.files_analyzed == 2 and result.llm_status == "not_configured"


def test_fingerprints_survive_lines_added_above(workspace: Path) -> None:
    arguments = {"ddl": ["db/shop.sql"], "queries": ["db/queries"]}
    before = {f.rule_id + f.message: f.fingerprint for f in agent.run(arguments, RunContext(roots=(workspace,))).findings}
    for path in (workspace / "db" / "shop.sql", workspace / "db" / "queries" / "shop_queries.sql"):
        path.write_text("-- a new header line\n\n" + path.read_text())
    after = agent.run(arguments, RunContext(roots=(workspace,))).findings
    assert {f.rule_id + f.message: f.fingerprint for f in after} == before
    assert next(f for f in after if f.rule_id == "select-star").location == FileSpan("db/queries/shop_queries.sql", 4)


def test_sqlite_database_file(workspace: Path) -> None:
    with sqlite3.connect(workspace / "db" / "library.db") as db:
        db.executescript((FIXTURES / "library_sqlite.sql").read_text())
    db.close()
    result = agent.run({"sqlite_database": "db/library.db"}, RunContext(roots=(workspace,)))
    assert ("fk-without-index", NamedObject("column", "books.author_id")) in {(f.rule_id, f.location) for f in result.findings}


def test_paths_outside_the_workspace_are_refused(workspace: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.sql"
    outside.write_text("CREATE TABLE secret (id int);")
    (workspace / "db" / "link.sql").symlink_to(outside)
    assert refused({"ddl": [str(outside)]}, workspace) == "input.ddl[0]"
    assert refused({"ddl": ["db/link.sql"]}, workspace) == "input.ddl[0]"
    assert refused({"ddl": ["db/shop.sql"], "queries": ["../outside.sql"]}, workspace) == "input.queries[0]"
    assert refused({"sqlite_database": str(outside)}, workspace) == "input.sqlite_database"


def test_bad_input_names_the_field(workspace: Path) -> None:
    (workspace / "db" / "latin1.sql").write_bytes(b"-- caf\xe9\nCREATE TABLE t (id int);")
    (workspace / "db" / "plain.db").write_text("not a database")
    assert refused({}, workspace) == "input.ddl"
    assert refused({"ddl": ["db/shop.sql"], "sqlite_database": "db/plain.db"}, workspace) == "input.sqlite_database"
    assert refused({"ddl": ["db/shop.sql"], "dialect": "oracle"}, workspace) == "input.dialect"
    assert refused({"ddl": ["db/latin1.sql"]}, workspace) == "input.ddl[0]"
    assert refused({"ddl": ["db/missing.sql"]}, workspace) == "input.ddl[0]"
    assert refused({"ddl": ["db/queries/../no-such-folder"]}, workspace) == "input.ddl[0]"
    assert refused({"sqlite_database": "db/plain.db"}, workspace) == "input.sqlite_database"
    assert refused({"sqlite_database": "db"}, workspace) == "input.sqlite_database"
    assert refused({"ddl": ["db/shop.sql"], "schemas": ["public"]}, workspace) == "input.schemas"
    assert refused({"connection": "nope"}, workspace) == "input.connection"
    assert refused({"ddl": "db/shop.sql"}, workspace) == "input.ddl"


def test_oversized_file_is_refused(workspace: Path) -> None:
    from services.agents.base import Limits

    with pytest.raises(InvalidArgument) as error:
        agent.run({"ddl": ["db/shop.sql"]}, RunContext(roots=(workspace,), limits=Limits(max_file_bytes=100)))
    assert error.value.violations[0].field == "input.ddl[0]" and "more than the 100 allowed" in error.value.message


class _Model:
    """A model client that answers like a model would, or fails like a throttled one."""

    model_id = "stand-in-model"

    def __init__(self, answer: str | None) -> None:
        self.answer = answer
        self.prompts: list[str] = []

    def complete(self, system: str, prompt: str, *, max_tokens: int = 1024) -> ModelReply:
        self.prompts.append(prompt)
        if self.answer is None:
            raise TimeoutError("throttled")
        return ModelReply(self.answer, self.model_id, input_tokens=120, output_tokens=30)


def test_model_explains_findings_in_its_own_artifact(workspace: Path) -> None:
    model = _Model("1:: A missing key lets duplicate rows in.\n7:: not a finding number\nnoise")
    result = agent.run({"ddl": ["db/shop.sql"]}, RunContext(roots=(workspace,), model=model))
    assert model.prompts[0].startswith("1. [missing-primary-key] order_items: table order_items has no primary key.")
    explanations = next(a for a in result.artifacts if a.name == "explanations.md").content
    assert "`stand-in-model`" in explanations
    assert "- **missing-primary-key** at order_items: A missing key lets duplicate rows in." in explanations
    assert result.llm_status == "completed" and (result.input_tokens, result.output_tokens) == (120, 30)
    static = agent.run({"ddl": ["db/shop.sql"]}, RunContext(roots=(workspace,)))
    assert result.findings == static.findings  # the model adds prose, never findings


def test_failed_model_step_leaves_the_static_result(workspace: Path) -> None:
    result = agent.run({"ddl": ["db/shop.sql"]}, RunContext(roots=(workspace,), model=_Model(None)))
    assert result.llm_status == "failed" and "explanations.md" not in [a.name for a in result.artifacts]
    assert len(result.findings) == 10


def test_a_cancelled_run_stops(workspace: Path) -> None:
    from services.agents.base import RunCancelled

    context = RunContext(roots=(workspace,))
    context.cancelled.set()
    with pytest.raises(RunCancelled):
        agent.run({"ddl": ["db/shop.sql"], "queries": ["db/queries"]}, context)


@pytest.mark.parametrize(("raw", "says"), [
    ("not json", "not JSON"),
    ('["postgresql://h/db"]', "JSON object"),
    ('{"shop": 5}', "JSON object"),
    ('{"bad name!": "postgresql://h/db"}', "connection name"),
    ('{"shop": "mysql://h/db"}', "postgresql:// URL"),
])
def test_configured_connections_are_checked_at_start_up(raw: str, says: str) -> None:
    from services.runtime.config import Config

    with pytest.raises(SystemExit) as stopped:
        Config.from_env("agents", {"MCPMESH_DATABASE_CONNECTIONS": raw})
    assert "MCPMESH_DATABASE_CONNECTIONS" in str(stopped.value) and says in str(stopped.value)


def test_configured_connections_parse_to_name_url_pairs() -> None:
    from services.runtime.config import Config

    config = Config.from_env("agents", {"MCPMESH_DATABASE_CONNECTIONS": '{"shop": "postgresql://r@db/shop", "crm": "postgres://r@db/crm"}'})
    assert config.database_connections == (("crm", "postgres://r@db/crm"), ("shop", "postgresql://r@db/shop"))
    assert Config.from_env("agents", {}).database_connections == ()


def test_total_sql_read_in_one_run_is_capped(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from services.agents.database import inputs

    monkeypatch.setattr(inputs, "MAX_TOTAL_BYTES", 3000)
    with pytest.raises(InvalidArgument) as error:
        agent.run({"ddl": ["db/shop.sql", "db/shop.sql"]}, RunContext(roots=(workspace,)))
    assert error.value.violations[0].field == "input.ddl" and "3000 bytes" in error.value.message


def test_a_folder_is_searched_for_schema_queries_and_databases(workspace: Path) -> None:
    # db/ holds shop.sql (CREATE TABLE: the schema) and queries/shop_queries.sql (no DDL: queries); dialect guessed.
    result = agent.run({"path": "db"}, RunContext(roots=(workspace,)))
    rules = {(f.rule_id, f.location) for f in result.findings}
    assert ("fk-without-index", NamedObject("column", "orders.customer_id")) in rules
    assert ("update-without-where", FileSpan("queries/shop_queries.sql", 7)) in rules
    assert result.files_analyzed == 2 and result.metrics["tables"] == 5


def test_a_folder_with_only_sqlite_databases_uses_the_first(workspace: Path) -> None:
    data = workspace / "data"
    data.mkdir()
    for name in ("a.db", "b.sqlite"):
        db = sqlite3.connect(data / name)
        db.executescript((FIXTURES / "library_sqlite.sql").read_text())
        db.close()
    (data / "notes.db").write_text("not a database")
    (data / "report.sql").write_text("SELECT * FROM books WHERE price > 10;\n")
    result = agent.run({"path": "data"}, RunContext(roots=(workspace,)))
    assert ("fk-without-index", NamedObject("column", "books.author_id")) in {(f.rule_id, f.location) for f in result.findings}
    assert ("select-star", FileSpan("report.sql", 1)) in {(f.rule_id, f.location) for f in result.findings}
    assert "SQLite databases not analysed (one schema per run): b.sqlite." in result.summary
    assert result.files_analyzed == 2


def test_a_folder_of_migrations_applies_up_migrations_in_natural_order(workspace: Path) -> None:
    migrations = workspace / "migrations"
    migrations.mkdir()
    (migrations / "2_teams.up.sql").write_text("CREATE TABLE teams (id int PRIMARY KEY);\n")
    (migrations / "2_teams.down.sql").write_text("DROP TABLE teams;\n")
    (migrations / "10_members.up.sql").write_text("CREATE TABLE members (id int PRIMARY KEY, team_id int REFERENCES teams);\n")
    result = agent.run({"path": "migrations"}, RunContext(roots=(workspace,)))
    assert [(f.rule_id, f.location) for f in result.findings] == [
        ("fk-without-index", NamedObject("column", "members.team_id"))]
    assert result.files_analyzed == 2


def test_a_folder_is_read_alone_and_must_hold_something(workspace: Path) -> None:
    (workspace / "empty").mkdir()
    assert refused({"path": "db", "ddl": ["db/shop.sql"]}, workspace) == "input.ddl"
    assert refused({"path": "empty"}, workspace) == "input.path"
    assert refused({"path": "db/shop.sql"}, workspace) == "input.path"
    assert refused({"path": "/etc"}, workspace) == "input.path"


def test_dialect_is_guessed_from_the_sql() -> None:
    from services.agents.database.folder import guess_dialect

    assert guess_dialect((FIXTURES / "library_mysql.sql").read_text()) == "mysql"
    assert guess_dialect("CREATE TABLE kv (k TEXT PRIMARY KEY) WITHOUT ROWID;") == "sqlite"
    assert guess_dialect((FIXTURES / "shop_postgres.sql").read_text()) == "postgres"
