"""The whole mesh as CloudFormation configures it: every service's state in DynamoDB (DynamoDB Local here), the first
admin key given by a secret, two agents and two tools instances, and no state on the data folder's disk. A
repository review runs through the edge with a key the admin made, and its graph is read back."""

from __future__ import annotations

import importlib
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx
import pytest

from services.gateway.api_keys import new_secret
from services.launcher.processes import LocalMesh
from services.workflows.checkpoints import SQLITE_SHARDS
from tests.conftest import start_mesh
from tests.integration.test_workflow_types_e2e import (
    CODE_FINDINGS,
    DATABASE_FINDINGS,
    FIXTURES,
    check_knowledge,
    run,
    where,
)
from tests.unit.test_deploy import ADAPTERS

STATE_FILES = ("gateway.db", "agents.db", "tools.db", "workflows.db", "knowledge.db", "admin.key",
               "workflow-checkpoints.db", *(f"workflow-checkpoints-{n}.db" for n in range(1, SQLITE_SHARDS)))


@pytest.fixture(scope="module")
def deployed(dynamodb_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalMesh, str, str, Path]]:
    prefix = "m" + uuid.uuid4().hex[:12]
    _, admin = new_secret()
    workspace = tmp_path_factory.mktemp("deployed-workspace")
    shop = workspace / "shop"
    shutil.copytree(FIXTURES / "knowledge" / "shop", shop)
    shutil.copy(FIXTURES / "database" / "shop_queries.sql", shop / "queries.sql")
    mesh = start_mesh(tmp_path_factory.mktemp("deployed-mesh"), workspace, instances={"agents": 2, "tools": 2},
                      MCPMESH_STATE_URL=f"dynamodb://{prefix}?endpoint={dynamodb_endpoint}&region=us-east-1",
                      MCPMESH_BOOTSTRAP_ADMIN_KEY=admin)
    try:
        yield mesh, prefix, admin, shop
    finally:
        mesh.stop()


def test_every_service_made_its_tables_and_keeps_nothing_on_disk(deployed: tuple[LocalMesh, str, str, Path]) -> None:
    mesh, prefix, _, _ = deployed
    pages = boto3.client("dynamodb").get_paginator("list_tables").paginate()
    made = {t for page in pages for t in page["TableNames"] if t.startswith(f"{prefix}-")}
    expected = {d["TableName"] for names in ADAPTERS.values() for m in names
                for d in importlib.import_module(m).table_definitions(prefix)}
    assert made == expected
    assert [name for name in STATE_FILES if (mesh.data_dir / name).exists()] == []


def test_a_key_made_by_the_given_admin_runs_a_repository_review(deployed: tuple[LocalMesh, str, str, Path]) -> None:
    mesh, _, admin, shop = deployed
    with httpx.Client(base_url=mesh.edge_url, headers={"Authorization": f"Bearer {admin}"}, timeout=60) as as_admin:
        made = as_admin.post("/v1/api-keys", json={"display_name": "ci", "role": "ROLE_OPERATOR"})
        assert made.status_code == 200, made.text
        secret = made.json()["secret"]
    with httpx.Client(base_url=mesh.edge_url, headers={"Authorization": f"Bearer {secret}"}, timeout=120) as rest:
        final, _ = run(rest, "repository_review", {"path": str(shop), "dialect": "sqlite"})
        result = final["result"]
        assert {where(f) for f in result["code"]["findings"]} == CODE_FINDINGS
        assert {where(f) for f in result["database"]["findings"]} == DATABASE_FINDINGS
        # Either agents instance answers the graph queries: the graph is in DynamoDB, not in one instance's file.
        for _ in range(4):
            check_knowledge(rest, result["knowledge"])
        again = rest.get(f"/v1/workflows/{final['id']}").json()["workflow"]
        assert again["state"] == "WORKFLOW_STATE_SUCCEEDED"
