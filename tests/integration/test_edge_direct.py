"""Calls go from the edge straight to the service: a gateway token verified by jwt_authn at the edge, a raw key
turned into a token at the edge (the key cache's exchange; the gateway's ext_authz check for keys it refuses); then
verified, rate-limited and strictly parsed by the service's shared runtime."""

from __future__ import annotations

import time
from pathlib import Path

import grpc
import httpx
import pytest

from services.launcher.processes import LocalMesh
from tests.conftest import start_mesh


def _token(mesh: LocalMesh, key: str) -> str:
    response = httpx.post(f"{mesh.edge_url}/v1/tokens", json={}, headers={"Authorization": f"Bearer {key}"}, timeout=10)
    response.raise_for_status()
    return str(response.json()["token"])


def _stats(mesh: LocalMesh, *names: str) -> dict[str, int]:
    found = httpx.get(f"{mesh.admin_url}/stats", params={"format": "json"}, timeout=10).json()["stats"]
    values = {s["name"]: int(s.get("value", 0)) for s in found if "name" in s}
    return {name: values.get(name, 0) for name in names}


def test_a_token_call_skips_the_gateway(mesh: LocalMesh, admin_key: str) -> None:
    headers = {"Authorization": f"Bearer {_token(mesh, admin_key)}"}
    names = ("cluster.gateway.upstream_rq_total", "cluster.tools.upstream_rq_total", "http.edge.jwt_authn.allowed")
    before = _stats(mesh, *names)
    for _ in range(20):
        response = httpx.get(f"{mesh.edge_url}/v1/tools/file_inventory", headers=headers, timeout=10)
        assert response.status_code == 200 and response.json()["tool"]["name"] == "file_inventory"
    after = _stats(mesh, *names)
    assert after["http.edge.jwt_authn.allowed"] - before["http.edge.jwt_authn.allowed"] >= 20
    assert after["cluster.tools.upstream_rq_total"] - before["cluster.tools.upstream_rq_total"] >= 20
    # Only the edge's own JWKS refreshes may reach the gateway meanwhile, never the twenty calls.
    assert after["cluster.gateway.upstream_rq_total"] - before["cluster.gateway.upstream_rq_total"] < 20


def test_a_key_call_is_exchanged_once_at_the_edge_and_goes_straight_to_the_service(
        mesh: LocalMesh, admin_key: str, rest: httpx.Client) -> None:
    # A key of its own: the admin key may still be in the edge's cache from another test's calls.
    created = rest.post("/v1/api-keys", json={"displayName": "edge-cache", "role": "ROLE_OPERATOR"})
    assert created.status_code == 200, created.text
    headers = {"Authorization": f"Bearer {created.json()['secret']}"}
    names = ("cluster.tools.upstream_rq_total", "cluster.gateway.upstream_rq_total", "cluster.edge_self.upstream_rq_total")
    before = _stats(mesh, *names)
    for _ in range(20):
        response = httpx.get(f"{mesh.edge_url}/v1/tools/file_inventory", headers=headers, timeout=10)
        assert response.status_code == 200 and response.json()["tool"]["name"] == "file_inventory"
    after = _stats(mesh, *names)
    assert after["cluster.tools.upstream_rq_total"] - before["cluster.tools.upstream_rq_total"] >= 20
    # The edge's key cache exchanged the key for a token (once per Envoy worker and 2 s), so the twenty calls
    # did not each cost the gateway a check.
    exchanges = after["cluster.edge_self.upstream_rq_total"] - before["cluster.edge_self.upstream_rq_total"]
    assert 1 <= exchanges < 20
    assert after["cluster.gateway.upstream_rq_total"] - before["cluster.gateway.upstream_rq_total"] < 20
    # The gateway only answers the checks: it has no ToolService to relay calls through any more.
    metadata = (("authorization", f"Bearer {admin_key}"),)
    with grpc.insecure_channel(f"127.0.0.1:{mesh.ports.service('gateway')}") as channel, pytest.raises(grpc.RpcError) as relayed:
        channel.unary_unary("/mcpmesh.tools.v1.ToolService/GetTool")(b"", timeout=10, metadata=metadata)
    assert relayed.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_a_refused_key_is_the_gateways_401_and_is_remembered(mesh: LocalMesh) -> None:
    unknown = {"Authorization": "Bearer mk_0123456789ab_" + "x" * 43}
    names = ("cluster.edge_self.upstream_rq_total", "http.edge.ext_authz.denied")
    before = _stats(mesh, *names)
    for _ in range(6):
        response = httpx.get(f"{mesh.edge_url}/v1/tools/file_inventory", headers=unknown, timeout=10)
        assert response.status_code == 401, response.text
        assert response.headers["www-authenticate"].startswith("Bearer ")
        assert response.json()["details"][0]["reason"] == "API_KEY_INVALID"
    after = _stats(mesh, *names)
    # Every call is refused by the gateway's check; the exchange was tried at most once per Envoy worker (the
    # edge also fetches the JWKS through edge_self now and then).
    assert after["http.edge.ext_authz.denied"] - before["http.edge.ext_authz.denied"] == 6
    assert after["cluster.edge_self.upstream_rq_total"] - before["cluster.edge_self.upstream_rq_total"] <= 4


def test_a_bad_token_is_refused_at_the_edge(mesh: LocalMesh, admin_key: str) -> None:
    token = _token(mesh, admin_key)
    head, body, signature = token.split(".")
    forged = f"{head}.{body}.{signature[:-4]}AAAA"
    before = _stats(mesh, "http.edge.jwt_authn.denied")["http.edge.jwt_authn.denied"]
    response = httpx.get(f"{mesh.edge_url}/v1/tools", headers={"Authorization": f"Bearer {forged}"}, timeout=10)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer ")
    assert _stats(mesh, "http.edge.jwt_authn.denied")["http.edge.jwt_authn.denied"] > before


def test_unknown_field_is_refused_by_the_service_itself(mesh: LocalMesh, admin_key: str, sample_project: Path) -> None:
    headers = {"Authorization": f"Bearer {_token(mesh, admin_key)}"}
    body = {"type": "code_analysis", "parameters": {"path": str(sample_project)}, "colour": "red"}
    response = httpx.post(f"{mesh.edge_url}/v1/workflows", json=body, headers=headers, timeout=30)
    assert response.status_code == 400, response.text
    error = response.json()
    assert error["message"].startswith("workflow.colour: ")
    reasons = [d.get("reason") for d in error["details"]]
    assert "UNKNOWN_FIELD" in reasons


@pytest.mark.parametrize("credential", ["token", "key"])
def test_unknown_field_of_a_large_body_is_refused(mesh: LocalMesh, admin_key: str, sample_project: Path, credential: str) -> None:
    bearer = _token(mesh, admin_key) if credential == "token" else admin_key
    # 700 KB: far above the 48 KiB the header copy used to carry, under the 1 MiB cap.
    body = {"type": "code_analysis", "parameters": {"path": str(sample_project), "note": "x" * 700_000}, "colour": "red"}
    response = httpx.post(f"{mesh.edge_url}/v1/workflows", json=body, headers={"Authorization": f"Bearer {bearer}"}, timeout=60)
    assert response.status_code == 400, response.text[:300]
    assert response.json()["message"].startswith("workflow.colour: ")


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory, sample_project: Path):  # type: ignore[no-untyped-def]
    running = start_mesh(tmp_path_factory.mktemp("direct-limits"), sample_project.parent, MCPMESH_RATE_LIMITS="viewer=0/5")
    yield running
    running.stop()


def test_token_calls_are_rate_limited_by_the_service(limited: LocalMesh) -> None:
    admin = {"Authorization": f"Bearer {limited.admin_key()}"}
    secret = httpx.post(f"{limited.edge_url}/v1/api-keys", json={"displayName": "v", "role": "ROLE_VIEWER"},
                        headers=admin, timeout=10).json()["secret"]
    headers = {"Authorization": f"Bearer {_token(limited, secret)}"}
    responses = [httpx.get(f"{limited.edge_url}/v1/tools", headers=headers, timeout=10) for _ in range(10)]
    codes = [r.status_code for r in responses]
    # The viewer's five, counted by the tools service although the calls never passed the gateway.
    assert codes.count(200) == 5 and codes.count(429) == 5, codes
    assert int(next(r for r in responses if r.status_code == 429).headers["retry-after"]) >= 1


@pytest.fixture(scope="module")
def gatewayless(tmp_path_factory: pytest.TempPathFactory, sample_project: Path):  # type: ignore[no-untyped-def]
    running = start_mesh(tmp_path_factory.mktemp("direct-no-gateway"), sample_project.parent)
    yield running
    running.stop()


def test_a_key_call_is_refused_while_the_gateway_is_down_never_let_through(gatewayless: LocalMesh) -> None:
    """ext_authz fails closed (failure_mode_allow false): no gateway, no key call once the edge's key cache has
    forgotten the key (2 s); back when the gateway is."""
    key = gatewayless.admin_key()
    headers = {"Authorization": f"Bearer {key}"}
    assert httpx.get(f"{gatewayless.edge_url}/v1/tools", headers=headers, timeout=10).status_code == 200
    gatewayless.stop_service("gateway")
    time.sleep(2.5)  # a key the edge exchanged in the last 2 s still works meanwhile: that is its cache
    refused = httpx.get(f"{gatewayless.edge_url}/v1/tools", headers=headers, timeout=10)
    assert refused.status_code == 503, refused.text
    with grpc.insecure_channel(f"127.0.0.1:{gatewayless.ports.edge}") as channel, pytest.raises(grpc.RpcError) as error:
        channel.unary_unary("/mcpmesh.tools.v1.ToolService/ListTools")(b"", timeout=10, metadata=(("authorization", f"Bearer {key}"),))
    assert error.value.code() == grpc.StatusCode.UNAVAILABLE
    gatewayless.start_service("gateway")
    gatewayless.wait_healthy(60)
    deadline = time.monotonic() + 30  # the edge's connection to the gateway comes back with the healthy host
    while (back := httpx.get(f"{gatewayless.edge_url}/v1/tools", headers=headers, timeout=10)).status_code != 200:
        assert back.status_code == 503 and time.monotonic() < deadline, back.text
        time.sleep(0.2)
