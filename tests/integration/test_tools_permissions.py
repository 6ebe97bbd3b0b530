"""Tool permissions are enforced for the caller through the edge: grants narrow what a key lists and executes."""

from __future__ import annotations

from pathlib import Path

import httpx

from services.launcher.processes import LocalMesh


def test_a_key_grant_narrows_that_key_only(mesh: LocalMesh, rest: httpx.Client, sample_project: Path) -> None:
    created = rest.post("/v1/api-keys", json={"displayName": "ci", "role": "ROLE_OPERATOR"}).json()
    key_id = created["apiKey"]["id"]
    operator = httpx.Client(base_url=mesh.edge_url, headers={"Authorization": f"Bearer {created['secret']}"}, timeout=30)
    body = {"arguments": {"path": str(sample_project)}}
    with operator:
        assert [t["name"] for t in operator.get("/v1/tools").json()["tools"]][:1] == ["file_inventory"]
        assert operator.post("/v1/tools/file_inventory/execute", json=body).status_code == 200

        granted = rest.post("/v1/tool-permissions", json={"tool": "time_*", "principal": f"key:{key_id}"})
        assert granted.status_code == 200, granted.text
        assert operator.get("/v1/tools").json().get("tools", []) == []
        denied = operator.post("/v1/tools/file_inventory/execute", json=body)
        assert denied.status_code == 403
        assert "TOOL_PERMISSION_DENIED" in denied.text
        # The admin is not narrowed by another key's grant.
        assert rest.post("/v1/tools/file_inventory/execute", json=body).status_code == 200

        revoked = rest.post("/v1/tool-permissions:revoke", json={"tool": "time_*", "principal": f"key:{key_id}"})
        assert revoked.status_code == 200
        assert operator.post("/v1/tools/file_inventory/execute", json=body).status_code == 200


def test_a_viewer_runs_only_what_a_grant_gives_its_key(mesh: LocalMesh, rest: httpx.Client, sample_project: Path) -> None:
    """The permissions decide over REST as over /mcp: a viewer's key runs nothing by default, a granted tool after."""
    created = rest.post("/v1/api-keys", json={"displayName": "reader", "role": "ROLE_VIEWER"}).json()
    key_id = created["apiKey"]["id"]
    body = {"arguments": {"path": str(sample_project)}}
    with httpx.Client(base_url=mesh.edge_url, headers={"Authorization": f"Bearer {created['secret']}"}, timeout=30) as viewer:
        assert viewer.get("/v1/tools").json().get("tools", []) == []
        denied = viewer.post("/v1/tools/file_stats/execute", json=body)
        assert denied.status_code == 403 and "TOOL_PERMISSION_DENIED" in denied.text
        granted = rest.post("/v1/tool-permissions", json={"tool": "file_stats", "principal": f"key:{key_id}"})
        assert granted.status_code == 200, granted.text
        assert [t["name"] for t in viewer.get("/v1/tools").json()["tools"]] == ["file_stats"]
        assert viewer.post("/v1/tools/file_stats/execute", json=body).status_code == 200
        assert viewer.post("/v1/tools/file_inventory/execute", json=body).status_code == 403
        # Still a viewer everywhere else: it may not start a workflow.
        assert viewer.post("/v1/workflows", json={"type": "code_analysis", "parameters": {"path": str(sample_project)}}).status_code == 403


def test_idempotency_key_is_scoped_by_caller_and_request(
    mesh: LocalMesh, rest: httpx.Client, sample_project: Path
) -> None:
    created = rest.post("/v1/api-keys", json={"displayName": "op", "role": "ROLE_OPERATOR"}).json()
    operator = httpx.Client(base_url=mesh.edge_url, headers={"Authorization": f"Bearer {created['secret']}"}, timeout=30)
    app = sample_project / "app"
    with operator:
        first = rest.post("/v1/tools/file_inventory/execute", json={"arguments": {"path": str(app)}, "idempotencyKey": "k-1"})
        assert first.status_code == 200
        # Another caller with the same key and another folder runs its own request.
        theirs = operator.post(
            "/v1/tools/file_inventory/execute", json={"arguments": {"path": str(sample_project)}, "idempotencyKey": "k-1"}
        )
        assert theirs.status_code == 200  # (it may come from the result cache, never from the admin's key)
        assert theirs.json()["result"]["total_files"] != first.json()["result"]["total_files"]
    again = rest.post("/v1/tools/file_inventory/execute", json={"arguments": {"path": str(app)}, "idempotencyKey": "k-1"})
    assert again.json()["cached"] is True and again.json()["result"] == first.json()["result"]
    reused = rest.post(
        "/v1/tools/file_inventory/execute", json={"arguments": {"path": str(sample_project)}, "idempotencyKey": "k-1"}
    )
    assert reused.status_code == 400 or reused.status_code == 409 or reused.status_code == 412
    assert "IDEMPOTENCY_KEY_REUSED" in reused.text


def _finished(client: httpx.Client, parameters: dict[str, str]) -> dict:
    created = client.post("/v1/workflows", json={"type": "code_analysis", "parameters": parameters})
    assert created.status_code == 200, created.text
    workflow_id = created.json()["workflow"]["id"]
    with client.stream("GET", f"/v1/workflows/{workflow_id}:watch") as response:
        for _ in response.iter_lines():  # to the terminal event
            pass
    return client.get(f"/v1/workflows/{workflow_id}").json()["workflow"]


def test_a_workflows_steps_have_the_permissions_of_the_key_that_created_it(
    mesh: LocalMesh, rest: httpx.Client, sample_project: Path
) -> None:
    """The steps call tools as the creating key, not as the workflows service: a key whose scopes leave out
    file_inventory cannot get it run by a workflow either; the same workflow from an unscoped key succeeds."""
    parameters = {"path": str(sample_project)}
    scoped = rest.post("/v1/api-keys", json={"displayName": "timer", "role": "ROLE_OPERATOR", "toolScopes": ["time_*"]})
    assert scoped.status_code == 200, scoped.text
    with httpx.Client(base_url=mesh.edge_url, headers={"Authorization": f"Bearer {scoped.json()['secret']}"},
                      timeout=60) as client:
        assert client.post("/v1/tools/file_inventory/execute", json={"arguments": parameters}).status_code == 403
        refused = _finished(client, parameters)
    assert refused["state"] == "WORKFLOW_STATE_FAILED"
    assert refused["creator"] == f"key:{scoped.json()['apiKey']['id']}"
    assert "TOOL_PERMISSION_DENIED" in refused["error"]["message"], refused["error"]
    steps = {s["name"]: s["state"] for s in refused["steps"]}
    assert steps["inventory_files"] == "WORKFLOW_STATE_FAILED", steps

    plain = rest.post("/v1/api-keys", json={"displayName": "analyst", "role": "ROLE_OPERATOR"}).json()
    with httpx.Client(base_url=mesh.edge_url, headers={"Authorization": f"Bearer {plain['secret']}"},
                      timeout=60) as client:
        done = _finished(client, parameters)
    assert done["state"] == "WORKFLOW_STATE_SUCCEEDED", done.get("error")
