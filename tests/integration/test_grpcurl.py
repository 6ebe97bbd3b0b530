"""grpcurl through the edge: reflection lists the four services, and an RPC answers."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from services.launcher.processes import LocalMesh

GRPCURL = shutil.which("grpcurl", path=str(Path(sys.executable).parent)) or "grpcurl"


def _grpcurl(*args: str) -> str:
    done = subprocess.run([GRPCURL, *args], capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_reflection_lists_all_four_services(mesh: LocalMesh) -> None:
    services = set(_grpcurl("-plaintext", f"127.0.0.1:{mesh.ports.edge}", "list").split())
    assert {
        "mcpmesh.gateway.v1.GatewayService",
        "mcpmesh.workflows.v1.WorkflowService",
        "mcpmesh.tools.v1.ToolService",
        "mcpmesh.agents.v1.AgentService",
    } <= services


def test_grpcurl_calls_an_rpc(mesh: LocalMesh, admin_key: str) -> None:
    out = _grpcurl(
        "-plaintext", "-H", f"authorization: Bearer {admin_key}",
        f"127.0.0.1:{mesh.ports.edge}", "mcpmesh.tools.v1.ToolService/ListTools",
    )
    assert [t["name"] for t in json.loads(out)["tools"]][:1] == ["file_inventory"]


def test_grpcurl_describes_a_forwarded_service(mesh: LocalMesh) -> None:
    out = _grpcurl("-plaintext", f"127.0.0.1:{mesh.ports.edge}", "describe", "mcpmesh.workflows.v1.WorkflowService")
    assert "rpc CreateWorkflow" in out and "rpc WatchWorkflow" in out
