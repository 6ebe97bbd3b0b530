"""The schema's Mermaid ER diagram: entities with key marks, one relationship per foreign key with its cardinality."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from services.agents.database.ddl import schema_from_ddl
from services.agents.database.mermaid import er_diagram

FIXTURES = Path(__file__).parent.parent / "fixtures" / "database"
MERMAID = FIXTURES / "mermaid"  # Mermaid's own parser (npm), installed there by .ci/run


def mermaid_parse(diagrams: list[str]) -> list[dict[str, Any]]:
    """What Mermaid itself says of each diagram: its type, or its parse error."""
    node = shutil.which("node")
    if node is None or not (MERMAID / "node_modules" / "mermaid").is_dir():
        pytest.fail(f"Mermaid is not installed: run `npm ci --prefix {MERMAID}` (.ci/run does)")
    done = subprocess.run([node, "check.mjs"], cwd=MERMAID, input="\0".join(diagrams), capture_output=True, text=True,
                          timeout=120, check=True)
    return list(json.loads(done.stdout))


def test_er_diagram_is_exact() -> None:
    schema, problems = schema_from_ddl([("er.sql", """
        CREATE TABLE accounts (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, email varchar(200) NOT NULL UNIQUE);
        CREATE TABLE profiles (account_id bigint PRIMARY KEY REFERENCES accounts (id), bio text);
        CREATE TABLE billing.invoices (
            id bigint PRIMARY KEY,
            account_id bigint NOT NULL REFERENCES accounts (id),
            approver_id bigint REFERENCES accounts (id),
            total numeric(12, 2) NOT NULL,
            issued_at timestamp with time zone NOT NULL
        );
    """)], "postgres")
    assert problems == []
    assert er_diagram(schema) == (
        "erDiagram\n"
        "    accounts {\n"
        "        bigint id PK\n"
        '        varchar email UK "not null"\n'
        "    }\n"
        "    profiles {\n"
        "        bigint account_id PK, FK\n"
        "        text bio\n"
        "    }\n"
        "    billing_invoices {\n"
        "        bigint id PK\n"
        '        bigint account_id FK "not null"\n'
        "        bigint approver_id FK\n"
        '        decimal total "not null"\n'
        '        timestamptz issued_at "not null"\n'
        "    }\n"
        '    accounts ||--o| profiles : "account_id"\n'
        '    accounts ||--o{ billing_invoices : "account_id"\n'
        '    accounts |o--o{ billing_invoices : "approver_id"\n'
    )


def test_names_mermaid_cannot_read_are_made_words() -> None:
    schema, _ = schema_from_ddl([("odd.sql", 'CREATE TABLE "2024 sales" ("1st" int PRIMARY KEY, "unit price" numeric(8, 2));')],
                                "postgres")
    assert er_diagram(schema) == 'erDiagram\n    _2024_sales {\n        int _1st PK\n        decimal unit_price\n    }\n'


def test_mermaid_itself_parses_every_diagram() -> None:
    from services.agents.database.analysis import analyse_ddl

    inputs = [("shop_postgres.sql", "postgres"), ("library_sqlite.sql", "sqlite"), ("library_mysql.sql", "mysql")]
    diagrams = [analyse_ddl([(name, (FIXTURES / name).read_text())], dialect).diagram for name, dialect in inputs]
    odd, _ = schema_from_ddl([("odd.sql", 'CREATE TABLE "2024 sales" ("1st" int PRIMARY KEY, "unit price" numeric(8, 2), '
                                          '"order" int REFERENCES "2024 sales");\nCREATE TABLE empty_one ();')], "postgres")
    diagrams.append(er_diagram(odd))
    assert mermaid_parse(diagrams) == [{"ok": True, "type": "er"}] * len(diagrams)
    # The check can fail: Mermaid refuses a diagram it cannot read.
    assert mermaid_parse(["erDiagram\n    a {\n        int x PK PK\n    }\n"])[0]["ok"] is False
