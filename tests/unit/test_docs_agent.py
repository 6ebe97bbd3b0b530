"""The Documentation Generator agent through its spec: pages land in the artifact store, byte-stable, stale pages removed."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import boto3
import pytest

from services.agents.base import FileSpan, RunContext
from services.agents.docs.agent import artifact_prefix, spec
from services.agents.knowledge import agent as knowledge_builder
from services.agents.knowledge.graph import graph_name
from services.agents.knowledge.store_sqlite import SCHEMA, SqliteGraphStore
from services.runtime.artifacts import ArtifactStore, open_artifact_store
from services.runtime.artifacts_local import LocalArtifactStore
from services.runtime.errors import InvalidArgument
from services.runtime.state import SqliteDatabase
from tests.moto_server import CREDENTIALS

SHOP = Path(__file__).resolve().parents[1] / "fixtures" / "knowledge" / "shop"
PAGES = [
    "docs/api/shop.md", "docs/api/shop.models.md", "docs/api/shop.repo.md", "docs/api/shop.service.md",
    "docs/architecture.md", "docs/coverage.md", "docs/index.md", "docs/schema.md", "manifest.json", "mkdocs.yml",
]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    copy = tmp_path / "work" / "shop"
    shutil.copytree(SHOP, copy)
    return copy


def _contents(store: ArtifactStore, prefix: str) -> dict[str, bytes]:
    async def read() -> dict[str, bytes]:
        listed, _ = await store.list(prefix, "", 100)
        return {a.name.removeprefix(prefix): (await store.get(a.name))[1] for a in listed}

    return asyncio.run(read())


def test_pages_are_stored_and_byte_stable(project: Path, tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "artifacts")
    agent = spec(store)
    context = RunContext(roots=(project.parent,))
    result = agent.run({"path": str(project), "schema": "schema.sql", "dialect": "sqlite", "project": "Shop"}, context)
    prefix = artifact_prefix(graph_name(project))
    assert result.metrics["artifact_prefix"] == prefix
    first = _contents(store, prefix)
    assert sorted(first) == PAGES
    assert first["docs/index.md"].startswith(b"# Shop\n")
    assert b"erDiagram" in first["docs/schema.md"]
    assert result.artifacts[0].name == "index.md" and result.artifacts[0].content == first["docs/index.md"].decode()
    assert (result.metrics["docstring_coverage"], result.metrics["public_objects"]) == (69.2, 13)
    assert [(f.rule_id, f.severity, f.location) for f in result.findings] == [
        ("missing-docstring", "info", FileSpan("shop/models.py", 11)),
        ("missing-docstring", "info", FileSpan("shop/models.py", 35)),
        ("missing-docstring", "info", FileSpan("shop/models.py", 39)),
        ("missing-docstring", "info", FileSpan("shop/service.py", 29)),
    ]
    assert result.summary.startswith("Documented 4 modules in 9 files under docs/")

    agent.run({"path": str(project), "schema": "schema.sql", "dialect": "sqlite", "project": "Shop"}, context)
    assert _contents(store, prefix) == first

    (project / "shop" / "repo.py").unlink()
    agent.run({"path": str(project), "project": "Shop", "discover_schema": False}, context)
    third = _contents(store, prefix)
    assert "docs/api/shop.repo.md" not in third and "docs/schema.md" not in third
    assert "docs/api/shop.service.md" in third
    agent.run({"path": str(project), "project": "Shop"}, context)  # schema.sql is found without being named
    found = _contents(store, prefix)["docs/schema.md"].decode()
    assert found.startswith("# Database schema\n\nRead from `schema.sql`: 2 tables.")
    assert 'customers ||--o{ orders : "customer_id"' in found


def test_reuses_what_the_knowledge_builder_read(project: Path, tmp_path: Path) -> None:
    database = SqliteDatabase(tmp_path / "knowledge.db", SCHEMA)
    graphs = SqliteGraphStore(database)
    try:
        context = RunContext(roots=(project.parent,))
        alone = spec(LocalArtifactStore(tmp_path / "alone")).run({"path": str(project)}, context)
        assert alone.metrics["files_reused"] == 0
        knowledge_builder.spec(graphs).run({"path": str(project)}, context)
        after = spec(LocalArtifactStore(tmp_path / "after"), graphs).run({"path": str(project)}, context)
        assert after.metrics["files_reused"] == 5
        prefix = artifact_prefix(graph_name(project))
        assert _contents(LocalArtifactStore(tmp_path / "after"), prefix) == _contents(LocalArtifactStore(tmp_path / "alone"), prefix)
    finally:
        database.close()


def test_bad_input_names_the_field(project: Path, tmp_path: Path) -> None:
    agent = spec(LocalArtifactStore(tmp_path / "artifacts"))
    with pytest.raises(InvalidArgument) as outside:
        agent.run({"path": "/"}, RunContext(roots=(project.parent,)))
    assert outside.value.violations[0].field == "input.path"
    with pytest.raises(InvalidArgument) as schema:
        agent.run({"path": str(project), "schema": "README.md/x"}, RunContext(roots=(project.parent,)))
    assert schema.value.violations[0].field == "input.schema"


def test_pages_go_to_s3_when_configured(project: Path, tmp_path: Path, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1").create_bucket(Bucket="docs-bucket")
    s3 = open_artifact_store(f"s3://docs-bucket/mcpmesh?endpoint={moto_endpoint}&region=us-east-1", tmp_path)
    local = LocalArtifactStore(tmp_path / "artifacts")
    arguments = {"path": str(project), "schema": "schema.sql", "dialect": "sqlite", "project": "Shop"}
    spec(s3).run(arguments, RunContext(roots=(project.parent,)))
    spec(local).run(arguments, RunContext(roots=(project.parent,)))
    prefix = artifact_prefix(graph_name(project))
    in_s3 = _contents(s3, prefix)
    assert sorted(in_s3) == PAGES and in_s3 == _contents(local, prefix)
    keys = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1").list_objects_v2(Bucket="docs-bucket")
    assert f"mcpmesh/{prefix}docs/index.md" in [o["Key"] for o in keys["Contents"]]
