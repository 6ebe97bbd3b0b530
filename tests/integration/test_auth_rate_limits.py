"""Rate limits per identity shared by every gateway instance through a real redis-server."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.conftest import start_mesh


def test_two_gateways_share_one_budget_per_identity(tmp_path_factory: pytest.TempPathFactory, sample_project: Path,
                                                    redis_url: str) -> None:
    mesh = start_mesh(tmp_path_factory.mktemp("shared-limits"), sample_project.parent, instances={"gateway": 2},
                      MCPMESH_RATE_LIMIT_URL=redis_url, MCPMESH_RATE_LIMIT="0", MCPMESH_RATE_BURST="1000",
                      MCPMESH_RATE_LIMITS="viewer=0/10")
    try:
        admin = {"Authorization": f"Bearer {mesh.admin_key()}"}
        secret = httpx.post(f"{mesh.edge_url}/v1/api-keys", json={"displayName": "v", "role": "ROLE_VIEWER"},
                            headers=admin, timeout=10).json()["secret"]
        codes = [httpx.get(f"{mesh.edge_url}/v1/whoami", headers={"Authorization": f"Bearer {secret}"}, timeout=10).status_code
                 for _ in range(30)]
        # Ten for the viewer role in all, although the calls were spread over two gateway instances.
        assert codes.count(200) == 10 and codes.count(429) == 20, codes
        # The admin's own budget (the default, 1000) is untouched by the viewer's.
        assert httpx.get(f"{mesh.edge_url}/v1/whoami", headers=admin, timeout=10).status_code == 200
    finally:
        mesh.stop()
