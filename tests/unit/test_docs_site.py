"""Documentation Generator: exact pages for the fixture project, byte stability, coverage, and a real MkDocs build."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from services.agents.docs.api_model import load_api
from services.agents.docs.render import er_diagram
from services.agents.docs.site import generate_site
from services.agents.knowledge.schema import Column, ForeignKey, Table

SHOP = Path(__file__).resolve().parents[1] / "fixtures" / "knowledge" / "shop"
TABLES = [
    Table("customers", (Column("id", "INTEGER", False, True), Column("name", "TEXT", False))),
    Table("orders", (Column("id", "INTEGER", False, True), Column("customer_id", "INTEGER", False), Column("amount", "REAL")),
          (ForeignKey(("customer_id",), "customers", ("id",)),)),
]

SERVICE_PAGE = '''# `shop.service`

Placing orders.

Source: `shop/service.py`

## Functions

### `place_order`

```python
def place_order(customer: str, amount: float) -> float
```

Place an order and return its total.

**Parameters**

| name | type | default | description |
|---|---|---|---|
| `customer` | `str` |  | Who orders. |
| `amount` | `float` |  | Net amount, above zero. |

**Returns**

| type | description |
|---|---|
| `float` | The gross total. |

**Raises**

| exception | when |
|---|---|
| `ValueError` | When the amount is not above zero. |

*Defined in `shop/service.py`, line 9.*

### `audit`

```python
def audit(order: Order) -> str
```

**Parameters**

| name | type | default | description |
|---|---|---|---|
| `order` | `Order` |  |  |

**Returns**

| type | description |
|---|---|
| `str` |  |

*Defined in `shop/service.py`, line 29.*
'''

ER_DIAGRAM = '''```mermaid
erDiagram
    customers {
        INTEGER id PK
        TEXT name
    }
    orders {
        INTEGER id PK
        INTEGER customer_id FK
        REAL amount
    }
    customers ||--o{ orders : "customer_id"
```'''

IMPORTS_DIAGRAM = '''```mermaid
flowchart LR
    m0["shop"]
    m1["shop.models"]
    m2["shop.repo"]
    m3["shop.service"]
    m4["test_service"]
    m0 --> m1
    m2 --> m3
    m3 --> m1
    m3 --> m2
    m4 --> m3
```'''


def test_pages_of_the_fixture() -> None:
    site = generate_site(SHOP, project="shop", tables=TABLES, schema_origin="schema.sql")
    assert list(site.files) == [
        "docs/api/shop.md", "docs/api/shop.models.md", "docs/api/shop.repo.md", "docs/api/shop.service.md",
        "docs/architecture.md", "docs/coverage.md", "docs/index.md", "docs/schema.md", "mkdocs.yml",
    ]
    assert site.files["docs/api/shop.service.md"] == SERVICE_PAGE
    models = site.files["docs/api/shop.models.md"]
    assert "```python\nclass Order(customer: str, amount: float)\n```\n\nBases: `Entity`\n\nAn order of one customer." in models
    assert "#### `Order.total`\n\n```python\ndef total(self) -> float\n```\n\nAmount with tax." in models
    assert "| `TAX_RATE` |  | `0.2` |  |" in models
    assert ER_DIAGRAM in site.files["docs/schema.md"]
    assert "| `customer_id` | `INTEGER` | no | → `customers`(id) |" in site.files["docs/schema.md"]
    architecture = site.files["docs/architecture.md"]
    assert IMPORTS_DIAGRAM in architecture
    assert "- `shop.repo` → `shop.service` → `shop.repo`" in architecture
    assert "| `shop.service` | 0.2500 | 2 | 2 |" in architecture
    assert "| `pytest` | 1 |" in architecture


def test_docstring_coverage() -> None:
    site = generate_site(SHOP, project="shop")
    assert (site.coverage.documented, site.coverage.total, site.coverage.percent) == (9, 13, 69.2)
    assert site.coverage.missing == ["shop.models.Entity.key", "shop.models.Order.describe", "shop.models.Customer", "shop.service.audit"]
    assert "9 of 13 public modules, classes, functions and methods have a docstring (69.2 %)." in site.files["docs/coverage.md"]
    assert "docs/schema.md" not in site.files


def test_byte_stable_across_runs_and_folders(tmp_path: Path) -> None:
    first = generate_site(SHOP, project="shop", tables=TABLES)
    copy = tmp_path / "copy"
    shutil.copytree(SHOP, copy)
    second = generate_site(copy, project="shop", tables=TABLES)
    assert first.files == second.files


def test_never_imports_the_project(tmp_path: Path) -> None:
    package = tmp_path / "explosive"
    package.mkdir()
    (package / "__init__.py").write_text('"""Blows up when imported."""\nraise SystemExit("imported!")\n\n\ndef fuse(n: int = 3) -> None:\n    """Lit."""\n')
    (package / "broken.py").write_text("def oops(:\n")
    modules, problems, _ = load_api(tmp_path)
    assert [m.path for m in modules] == ["explosive"]
    assert [(p.module, p.message.split(":")[0]) for p in problems] == [("explosive.broken", "SyntaxError")]
    assert modules[0].members[0].signature == "def fuse(n: int = 3) -> None"
    assert "explosive" not in sys.modules


def test_mkdocs_builds_the_site_strictly(tmp_path: Path) -> None:
    site = generate_site(SHOP, project="shop", tables=TABLES, schema_origin="schema.sql")
    for name, text in site.files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    built = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path / "out")],
                           check=False, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert built.returncode == 0, built.stderr
    page = (tmp_path / "out" / "api" / "shop.service" / "index.html").read_text()
    assert "place_order" in page and "Who orders." in page
    assert '<pre class="mermaid"><code>erDiagram' in (tmp_path / "out" / "schema" / "index.html").read_text()


def test_a_folder_that_is_itself_a_package(tmp_path: Path) -> None:
    package = tmp_path / "engine"
    package.mkdir()
    (package / "__init__.py").write_text('"""The engine."""\n')
    (package / "core.py").write_text('"""Core."""\n\n\ndef run(fast: bool = False) -> int:\n    """Runs."""\n    return 1\n')
    (package / "tests").mkdir()
    (package / "tests" / "test_core.py").write_text("def test_run():\n    pass\n")
    modules, problems, _ = load_api(package)
    assert [m.path for m in modules] == ["engine", "engine.core"] and problems == []
    assert modules[1].members[0].signature == "def run(fast: bool = False) -> int"
    assert modules[1].file == "core.py"


def test_er_diagram_draws_a_nullable_key_as_an_optional_parent() -> None:
    """A null foreign key means a child may have no parent (|o); a parent may always have no children (o{)."""
    teams = Table("teams", (Column("id", "INTEGER", nullable=False, primary_key=True),))
    people = Table("people", (Column("id", "INTEGER", nullable=False, primary_key=True), Column("team_id", "INTEGER")),
                   (ForeignKey(("team_id",), "teams", ("id",)),))
    assert er_diagram([teams, people]).splitlines()[-1] == '    teams |o--o{ people : "team_id"'
