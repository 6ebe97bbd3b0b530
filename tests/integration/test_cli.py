"""The `mcpmesh` CLI against the real edge: every command group, --json, analyze with SARIF and --fail-on, clear errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import jsonschema

from services.launcher.processes import LocalMesh


def _cli(mesh: LocalMesh, *args: str, key: str | None = None, url: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MCPMESH_", "MCP_API_KEY"))}
    env.update({"MCPMESH_URL": url or mesh.edge_url, "MCP_API_KEY": mesh.admin_key() if key is None else key,
                "MCPMESH_CONFIG": "/nonexistent/mcpmesh.json", "MCPMESH_TOKEN_CACHE": "off", "COLUMNS": "200"})
    return subprocess.run([sys.executable, "-m", "clients.cli", *args], capture_output=True, text=True, env=env,
                          cwd=tempfile.gettempdir(), timeout=120, check=False)


def _json(done: subprocess.CompletedProcess[str]) -> object:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_tools_list_get_execute(mesh: LocalMesh, sample_project: Path) -> None:
    done = _cli(mesh, "tools", "list")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("file_inventory")
    tool = _json(_cli(mesh, "tools", "get", "file_inventory", "--json"))
    assert isinstance(tool, dict) and tool["name"] == "file_inventory" and "path" in json.dumps(tool["inputSchema"])
    answer = _json(_cli(mesh, "tools", "execute", "file_inventory", "--arg", f"path={sample_project}", "--json"))
    assert isinstance(answer, dict) and answer["result"]["total_files"] == 5


def test_create_watch_get_list_workflow(mesh: LocalMesh, sample_project: Path) -> None:
    done = _cli(mesh, "workflows", "create", "--path", str(sample_project), "--watch")
    assert done.returncode == 0, done.stderr
    workflow_id, summary = done.stdout.strip().splitlines()
    assert summary.startswith("5 files, 22 lines (Python 3, JavaScript 1, Markdown 1).")
    assert summary.endswith("Model review not run: no model is configured; the findings are the static analysis alone.")
    assert "workflow succeeded" in done.stderr
    got = _json(_cli(mesh, "workflows", "get", workflow_id, "--json"))
    assert isinstance(got, dict) and got["state"] == "WORKFLOW_STATE_SUCCEEDED"
    table = _cli(mesh, "workflows", "get", workflow_id)
    assert "succeeded" in table.stdout and workflow_id in table.stdout
    listed = _json(_cli(mesh, "workflows", "list", "--state", "succeeded", "--json"))
    assert isinstance(listed, list) and workflow_id in [w["id"] for w in listed]
    watched = _cli(mesh, "workflows", "watch", workflow_id)
    assert watched.returncode == 0 and watched.stdout.strip() == summary


def test_cancel_a_finished_workflow_is_refused_clearly(mesh: LocalMesh, sample_project: Path) -> None:
    created = _json(_cli(mesh, "workflows", "create", "--path", str(sample_project), "--watch", "--json"))
    assert isinstance(created, dict)
    done = _cli(mesh, "workflows", "cancel", created["id"])
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith("error: ") and "HTTP 4" in done.stderr


def test_analyze_with_sarif_and_fail_on(mesh: LocalMesh, sample_project: Path, tmp_path: Path) -> None:
    sarif = tmp_path / "findings.sarif"
    done = _cli(mesh, "analyze", str(sample_project), "--sarif", str(sarif))
    assert done.returncode == 0, done.stderr
    assert "findings:" in done.stdout and "high" in done.stdout
    assert "analyze_code" in done.stderr and "100%" in done.stderr  # the progress bars' final state
    document = json.loads(sarif.read_text())
    results = [r for run in document["runs"] for r in run["results"]]
    assert document["version"] == "2.1.0" and results
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in results if "physicalLocation" in r["locations"][0]}
    assert "app/main.py" in uris
    schema = Path(__file__).resolve().parents[1] / "fixtures" / "sarif" / "sarif-schema-2.1.0.json"
    jsonschema.validate(document, json.loads(schema.read_text()))
    gated = _cli(mesh, "analyze", str(sample_project), "--fail-on", "high", "--no-progress")
    assert gated.returncode == 1
    assert gated.stderr.strip().splitlines()[-1].startswith("error: ") and "at or above high" in gated.stderr
    report = _json(_cli(mesh, "analyze", str(sample_project), "--json"))
    assert isinstance(report, dict) and report["state"] == "succeeded" and report["findingCounts"]["high"] >= 1


def test_analyze_fails_when_the_workflow_fails(mesh: LocalMesh, tmp_path: Path) -> None:
    outside = tmp_path / "outside"  # not under the mesh's workspace roots
    outside.mkdir()
    done = _cli(mesh, "analyze", str(outside))
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("error: ")


def test_agents_keys_health_metrics(mesh: LocalMesh, sample_project: Path) -> None:
    agents = _json(_cli(mesh, "agents", "list", "--json"))
    assert isinstance(agents, list) and "code-analyzer" in [a["name"] for a in agents]
    run = _json(_cli(mesh, "agents", "run", "code-analyzer", "--path", str(sample_project / "app"), "--json"))
    assert isinstance(run, dict) and run["state"] == "RUN_STATE_SUCCEEDED" and run["findings"]
    secret = _cli(mesh, "keys", "create", "cli-viewer", "--role", "viewer")
    assert secret.returncode == 0, secret.stderr
    keys = _json(_cli(mesh, "keys", "list", "--json"))
    assert isinstance(keys, list)
    viewer = next(k for k in keys if k["displayName"] == "cli-viewer")
    refused = _cli(mesh, "keys", "list", key=secret.stdout.strip())
    assert refused.returncode == 2 and "permission denied (HTTP 403)" in refused.stderr
    assert _cli(mesh, "keys", "revoke", viewer["id"]).returncode == 0
    revoked = _cli(mesh, "tools", "list", key=secret.stdout.strip())
    assert revoked.returncode == 2 and "not authenticated (HTTP 401)" in revoked.stderr
    health = _cli(mesh, "health")
    assert health.returncode == 0, health.stdout + health.stderr
    assert "workflows" in health.stdout and "serving" in health.stdout
    metrics = _json(_cli(mesh, "metrics", "--json"))
    assert isinstance(metrics, dict) and metrics["metrics"]


def test_errors_are_one_line(mesh: LocalMesh) -> None:
    bad = _cli(mesh, "tools", "execute", "file_inventory", "--arg", "colour=red")
    assert bad.returncode == 2
    assert "HTTP 400" in bad.stderr and "arguments.path" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    missing = _cli(mesh, "workflows", "get", "no-such-workflow")
    assert missing.returncode == 2 and "not found (HTTP 404)" in missing.stderr
    unknown = _cli(mesh, "tools", "list", key="not-a-key")
    assert unknown.returncode == 2 and "not authenticated (HTTP 401)" in unknown.stderr
    nokey = _cli(mesh, "tools", "list", key="")
    assert nokey.returncode == 2 and "MCP_API_KEY" in nokey.stderr


def test_client_exchanges_the_key_for_a_token_and_uses_it(mesh: LocalMesh, tmp_path: Path) -> None:
    from clients.rest import McpMeshClient

    cache = tmp_path / "tokens.json"
    client = McpMeshClient(mesh.edge_url, mesh.admin_key(), token_cache=cache)
    try:
        assert client.list_tools()
        token = client.auth.token
        assert token is not None and token.value.count(".") == 2  # a JWT from the gateway's CreateToken
        assert client.whoami()["role"] == "ROLE_ADMIN"
        assert client.auth.token == token  # reused, not exchanged per call
    finally:
        client.close()
    again = McpMeshClient(mesh.edge_url, mesh.admin_key(), token_cache=cache)
    try:
        assert again.auth.token == token  # the next run starts from the kept token
        assert again.list_tools()
    finally:
        again.close()
