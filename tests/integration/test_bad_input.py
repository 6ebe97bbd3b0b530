"""Bad input gets a 4xx with a JSON error naming the problem over REST, INVALID_ARGUMENT with a field over gRPC."""

from __future__ import annotations

import time
from pathlib import Path

import grpc
import httpx
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from mcpmesh.workflows.v1 import workflow_pb2, workflow_service_pb2, workflow_service_pb2_grpc

from services.launcher.processes import LocalMesh


def _details(body: dict) -> dict[str, dict]:
    return {d["@type"].rsplit(".", 1)[-1]: d for d in body.get("details", [])}


def test_unknown_field_is_rejected(rest: httpx.Client, sample_project: Path) -> None:
    body = {"type": "code_analysis", "parameters": {"path": str(sample_project)}, "colour": "red"}
    before = rest.get("/v1/workflows", params={"pageSize": 100}).json()["workflows"]
    response = rest.post("/v1/workflows", json=body)
    assert response.status_code == 400
    error = response.json()
    assert error["message"].startswith("workflow.colour: ")
    assert _details(error)["ErrorInfo"]["reason"] == "UNKNOWN_FIELD"
    assert _details(error)["BadRequest"]["fieldViolations"][0]["field"] == "workflow.colour"
    # Nothing half-written: the refused request created no workflow.
    assert rest.get("/v1/workflows", params={"pageSize": 100}).json()["workflows"] == before


def test_wrong_type_is_rejected(rest: httpx.Client) -> None:
    response = rest.post("/v1/workflows", json={"type": 42})
    assert response.status_code == 400
    assert response.json()["message"] == "workflow.type: invalid value 42 for type TYPE_STRING"
    not_json = rest.post("/v1/workflows", content=b"{not json", headers={"content-type": "application/json"})
    assert not_json.status_code == 400
    assert not_json.json()["httpStatus"] == 400


def test_missing_required_field_names_it(rest: httpx.Client) -> None:
    response = rest.post("/v1/workflows", json={"parameters": {"path": "."}})
    assert response.status_code == 400
    body = response.json()
    assert body["message"] == "workflow.type: is required"
    details = _details(body)
    assert details["ErrorInfo"]["reason"] == "INVALID_ARGUMENT"
    violations = [(v["field"], v["description"]) for v in details["BadRequest"]["fieldViolations"]]
    assert violations == [("workflow.type", "is required")]


def test_missing_parameter_names_it(rest: httpx.Client) -> None:
    response = rest.post("/v1/workflows", json={"type": "code_analysis", "parameters": {}})
    assert response.status_code == 400
    assert _details(response.json())["BadRequest"]["fieldViolations"][0]["field"] == "workflow.parameters.path"


def test_unknown_workflow_type(rest: httpx.Client) -> None:
    response = rest.post("/v1/workflows", json={"type": "make_coffee", "parameters": {}})
    assert response.status_code == 400
    body = response.json()
    assert "make_coffee" in body["message"]
    assert _details(body)["ErrorInfo"]["reason"] == "UNKNOWN_WORKFLOW_TYPE"


def test_oversize_body(rest: httpx.Client) -> None:
    big = {"type": "code_analysis", "parameters": {"path": "x" * (2 * 2**20)}}
    response = rest.post("/v1/workflows", json=big)
    assert response.status_code == 413
    assert response.json()["httpStatus"] == 413


def test_unknown_query_parameter_and_path(rest: httpx.Client) -> None:
    assert rest.get("/v1/workflows", params={"colour": "red"}).status_code == 400
    assert rest.get("/v1/no-such-thing").status_code == 404


def test_missing_workflow_is_404_with_reason(rest: httpx.Client) -> None:
    response = rest.get("/v1/workflows/does-not-exist")
    assert response.status_code == 404
    assert _details(response.json())["ErrorInfo"]["reason"] == "WORKFLOW_NOT_FOUND"


def test_bad_page_token_names_the_field(rest: httpx.Client) -> None:
    response = rest.get("/v1/workflows", params={"pageToken": "not-a-token"})
    assert response.status_code == 400
    assert _details(response.json())["BadRequest"]["fieldViolations"][0]["field"] == "page_token"


def test_tool_argument_errors(rest: httpx.Client, tmp_path: Path) -> None:
    missing = rest.post("/v1/tools/file_inventory/execute", json={"arguments": {}})
    assert missing.status_code == 400
    assert _details(missing.json())["BadRequest"]["fieldViolations"][0]["field"] == "arguments.path"
    outside = rest.post("/v1/tools/file_inventory/execute", json={"arguments": {"path": str(tmp_path)}})
    assert outside.status_code == 400
    assert _details(outside.json())["ErrorInfo"]["reason"] == "PATH_OUTSIDE_WORKSPACE"
    unknown = rest.post("/v1/tools/nope/execute", json={"arguments": {}})
    assert unknown.status_code == 404


def test_grpc_invalid_argument_carries_a_field_violation(mesh: LocalMesh, admin_key: str) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{mesh.ports.edge}") as channel:
        stub = workflow_service_pb2_grpc.WorkflowServiceStub(channel)
        request = workflow_service_pb2.CreateWorkflowRequest(workflow=workflow_pb2.Workflow(type="code_analysis"))
        with pytest.raises(grpc.RpcError) as caught:
            stub.CreateWorkflow(request, metadata=[("authorization", f"Bearer {admin_key}")], timeout=10)
    error = caught.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(error)
    assert status is not None and status.message == error.details()
    violations = []
    for detail in status.details:
        bad_request = error_details_pb2.BadRequest()
        if detail.Unpack(bad_request):
            violations += [v.field for v in bad_request.field_violations]
    assert violations == ["workflow.parameters.path"]


def test_requests_without_a_valid_key_are_refused(mesh: LocalMesh, rest: httpx.Client) -> None:
    assert httpx.get(f"{mesh.edge_url}/v1/tools").status_code == 401
    bad = httpx.get(f"{mesh.edge_url}/v1/tools", headers={"Authorization": "Bearer mk_nope_nope"})
    assert bad.status_code == 401
    assert _details(bad.json())["ErrorInfo"]["reason"] == "API_KEY_INVALID"


def test_roles_and_revocation(mesh: LocalMesh, rest: httpx.Client, sample_project: Path) -> None:
    created = rest.post("/v1/api-keys", json={"displayName": "dashboard", "role": "ROLE_VIEWER"}).json()
    viewer = {"Authorization": f"Bearer {created['secret']}"}
    whoami = httpx.get(f"{mesh.edge_url}/v1/whoami", headers=viewer).json()
    assert whoami == {"principal": f"key:{created['apiKey']['id']}", "role": "ROLE_VIEWER", "displayName": "dashboard"}
    assert httpx.get(f"{mesh.edge_url}/v1/tools", headers=viewer).status_code == 200
    denied = httpx.post(f"{mesh.edge_url}/v1/workflows", headers=viewer,
                        json={"type": "code_analysis", "parameters": {"path": str(sample_project)}})
    assert denied.status_code == 403
    assert _details(denied.json())["ErrorInfo"]["reason"] == "ROLE_TOO_LOW"
    assert rest.post(f"/v1/api-keys/{created['apiKey']['id']}:revoke", json={}).status_code == 200
    # The edge remembers a key for 2 s (envoy/edge.yaml, mcpmesh.key_cache): refused within that, for good after.
    deadline = time.monotonic() + 5
    while (status := httpx.get(f"{mesh.edge_url}/v1/tools", headers=viewer).status_code) != 401 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert status == 401
    time.sleep(2.5)
    assert httpx.get(f"{mesh.edge_url}/v1/tools", headers=viewer).status_code == 401
    listed = rest.get("/v1/api-keys").json()["apiKeys"]
    assert all("secret" not in k for k in listed)
    assert rest.post("/v1/api-keys", json={"displayName": "", "role": "ROLE_ADMIN"}).status_code == 400


# Issue 6: classes of hostile input found at the edge. Each failed before its fix.

@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/v1/workflows/%ff%fe", "id"),
        ("/v1/tools?pageToken=%00%ff", "page_token"),
        ("/v1/agents/%c3%28", "name"),
        ("/v1/workflows/%00abc", "id"),
    ],
)
def test_invalid_utf8_or_nul_in_path_or_query_is_400_naming_the_field(rest: httpx.Client, path: str, field: str) -> None:
    response = rest.get(path)
    assert response.status_code == 400, response.text
    body = response.json()
    assert _details(body)["BadRequest"]["fieldViolations"][0]["field"] == field
    assert "DecodeError" not in response.text and "Traceback" not in response.text


def test_oversize_id_is_invalid_argument_over_grpc_and_does_not_eject_the_service(mesh: LocalMesh, admin_key: str) -> None:
    """Before: a 64 KiB id made a status too large for the trailers, a protocol error Envoy counted against the host."""
    auth = [("authorization", f"Bearer {admin_key}")]
    with grpc.insecure_channel(f"127.0.0.1:{mesh.ports.edge}") as channel:
        stub = workflow_service_pb2_grpc.WorkflowServiceStub(channel)
        for _ in range(8):  # more than the 5 consecutive failures that would eject a host
            with pytest.raises(grpc.RpcError) as caught:
                stub.GetWorkflow(workflow_service_pb2.GetWorkflowRequest(id="x" * 65536), metadata=auth, timeout=10)
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert len(caught.value.details()) < 300
        listed = stub.ListWorkflows(workflow_service_pb2.ListWorkflowsRequest(page_size=1), metadata=auth, timeout=10)
        assert listed is not None
    stats = httpx.get(f"http://127.0.0.1:{mesh.ports.admin}/stats", params={"filter": r"outlier_detection\.ejections_enforced_total"}).text
    assert all(line.endswith(": 0") for line in stats.splitlines() if line.strip()), stats


def test_overlong_path_is_400_or_431_not_429(rest: httpx.Client) -> None:
    response = rest.get("/v1/workflows/" + "a" * 20000)
    assert response.status_code in (400, 431, 414), response.text
    response = rest.get("/v1/workflows/" + "a" * 6000)
    assert response.status_code in (400, 431, 414), response.text


def test_header_name_grpc_cannot_carry_is_400_and_never_ejects_a_host(mesh: LocalMesh, rest: httpx.Client) -> None:
    """Before: `X-Weird!Key` (legal in HTTP, not in gRPC metadata) answered 500 from the upstream codec, and
    five of them ejected the single gateway host for everyone."""
    for _ in range(8):  # more than the 5 consecutive 5xx that would eject a host
        response = rest.get("/v1/tools", headers={"X-Weird!Key": "1"})
        assert response.status_code == 400, response.text
        assert "x-weird!key" in response.json()["message"]
    assert rest.get("/v1/tools").status_code == 200
    stats = httpx.get(f"http://127.0.0.1:{mesh.ports.admin}/stats", params={"filter": r"outlier_detection\.ejections_enforced_total"}).text
    assert all(line.endswith(": 0") for line in stats.splitlines() if line.strip()), stats
