"""The schema's Mermaid ER diagram: entities with key marks, one relationship per foreign key with its cardinality."""

from __future__ import annotations

from services.agents.database.ddl import schema_from_ddl
from services.agents.database.mermaid import er_diagram


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
