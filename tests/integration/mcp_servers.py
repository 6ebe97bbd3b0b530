"""External MCP servers the tests run: mcp-server-time (PyPI, stdio) and server-everything (npm, streamable HTTP),
both installed by .ci/run under .tools/ (outside git)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from services.launcher.ports import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / ".tools"
TIME_SERVER = os.environ.get("MCPMESH_TEST_TIME_SERVER", str(TOOLS / "mcp-server-time" / "bin" / "mcp-server-time"))
EVERYTHING = TOOLS / "node_modules" / "@modelcontextprotocol" / "server-everything" / "dist" / "index.js"
INSPECTOR = TOOLS / "node_modules" / "@modelcontextprotocol" / "inspector-cli" / "build" / "cli.js"


def require(path: str | Path, what: str) -> str:
    assert Path(path).exists(), f"{what} is not installed at {path}: run .ci/run (it installs the test MCP servers)"
    return str(path)


@contextmanager
def everything_server() -> Iterator[str]:
    """server-everything over streamable HTTP on a free loopback port; yields its /mcp URL."""
    node = shutil.which("node")
    assert node, "node is not installed"
    port = free_port()
    process = subprocess.Popen(
        [node, require(EVERYTHING, "@modelcontextprotocol/server-everything"), "streamableHttp"],
        env={**os.environ, "PORT": str(port)}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        if not wait_for_port(port, 20):
            pytest.fail("server-everything did not listen within 20 s")
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def pids_running(marker: str) -> list[int]:
    """Children of this process whose command line holds `marker` (a stdio server the registry started here,
    not one another test run or a benchmark started)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                if parent == os.getpid() and marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except (OSError, ValueError, IndexError):
                continue
    return found
