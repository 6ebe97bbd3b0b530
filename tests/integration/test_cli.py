"""The `mcpmesh` CLI against the real edge: list tools, run a workflow, and clear errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from services.launcher.processes import LocalMesh


def _cli(mesh: LocalMesh, *args: str, key: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MCPMESH_URL": mesh.edge_url, "MCP_API_KEY": mesh.admin_key() if key is None else key}
    return subprocess.run([sys.executable, "-m", "clients.cli", *args], capture_output=True, text=True, env=env, timeout=120, check=False)


def test_tools_list(mesh: LocalMesh) -> None:
    done = _cli(mesh, "tools", "list")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("file_inventory")


def test_create_and_watch_workflow(mesh: LocalMesh, sample_project: Path) -> None:
    done = _cli(mesh, "workflow", "create", "--path", str(sample_project), "--watch")
    assert done.returncode == 0, done.stderr
    workflow_id, summary = done.stdout.strip().splitlines()
    assert summary.startswith("5 files, 22 lines (Python 3, JavaScript 1, Markdown 1).")
    assert summary.endswith("LLM review not run: no LLM is configured.")
    assert "workflow succeeded" in done.stderr
    status = _cli(mesh, "workflow", "status", workflow_id)
    assert '"state": "WORKFLOW_STATE_SUCCEEDED"' in status.stdout


def test_execute_tool_with_bad_argument_names_the_field(mesh: LocalMesh) -> None:
    done = _cli(mesh, "tools", "execute", "file_inventory", "--arg", "colour=red")
    assert done.returncode == 2
    assert "HTTP 400" in done.stderr and "arguments.path" in done.stderr


def test_missing_key_is_explained(mesh: LocalMesh) -> None:
    done = _cli(mesh, "tools", "list", key="")
    assert done.returncode != 0
    assert "MCP_API_KEY" in done.stderr
