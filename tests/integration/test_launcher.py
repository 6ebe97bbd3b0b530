"""The launcher as `make up` runs it: it restarts a dead service, and a signal to its group leaves nothing behind."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import wait_until


@dataclass
class Launcher:
    process: subprocess.Popen[bytes]
    data_dir: Path
    output: Path

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def state(self) -> dict:
        return json.loads((self.data_dir / "mesh.json").read_text())

    def system_health(self) -> dict[str, str]:
        key = (self.data_dir / "admin.key").read_text().strip()
        response = httpx.get(f"{self.state()['edge_url']}/v1/system/health", headers={"Authorization": f"Bearer {key}"}, timeout=10)
        return {s["service"]: s["status"] for s in response.json().get("services", [])}


def _alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return status.rsplit(")", 1)[1].split()[0] != "Z"


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _start(tmp_path: Path, workspace: Path) -> Launcher:
    output = tmp_path / "launcher.out"
    data_dir = tmp_path / "data"
    with open(output, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.launcher", "--no-analysis", "--free-ports",
             "--data-dir", str(data_dir), "--path", str(workspace)],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            # Its own process group, like `make up` in a terminal: the test signals the whole group.
            start_new_session=True,
        )
    launcher = Launcher(process, data_dir, output)
    wait_until(lambda: "serving; Ctrl-C" in launcher.text() or process.poll() is not None, 120, "the launcher to be up")
    assert process.poll() is None, launcher.text()
    return launcher


@pytest.fixture()
def launcher(tmp_path: Path, sample_project: Path) -> Iterator[Launcher]:
    running = _start(tmp_path, sample_project.parent)
    yield running
    if running.process.poll() is None:
        os.killpg(running.process.pid, signal.SIGTERM)
        running.process.wait(60)


def test_killed_service_is_restarted_and_healthy_again(launcher: Launcher) -> None:
    old = launcher.state()["pids"]["agents"]
    os.kill(old, signal.SIGKILL)
    wait_until(lambda: "agents exited (signal SIGKILL)" in launcher.text(), 10, "the launcher to notice agents died")
    wait_until(lambda: "agents is healthy again" in launcher.text(), 60, "agents to be restarted and healthy")
    new = launcher.state()["pids"]["agents"]
    assert new != old and _alive(new)
    # The gateway's report follows Envoy's health check within seconds.
    wait_until(lambda: launcher.system_health().get("agents") == "HEALTH_STATUS_SERVING", 15, "system health to show agents SERVING")


def test_sigterm_to_the_group_stops_everything_even_when_repeated(launcher: Launcher) -> None:
    state = launcher.state()
    pids = list(state["pids"].values())
    ports = list(state["ports"].values())
    assert len(pids) == 5 and all(_alive(pid) for pid in pids)
    os.killpg(launcher.process.pid, signal.SIGTERM)
    wait_until(lambda: "stopping" in launcher.text(), 10, "the launcher to start stopping")
    os.killpg(launcher.process.pid, signal.SIGTERM)  # a second signal must not cut the shutdown short
    os.killpg(launcher.process.pid, signal.SIGINT)
    assert launcher.process.wait(60) == 0, launcher.text()
    assert "stopped" in launcher.text()
    assert [pid for pid in pids if _alive(pid)] == []
    assert [port for port in ports if _listening(port)] == []


def test_children_do_not_outlive_a_killed_launcher(launcher: Launcher) -> None:
    pids = list(launcher.state()["pids"].values())
    launcher.process.kill()  # no chance to clean up: PR_SET_PDEATHSIG must end the children
    launcher.process.wait(10)
    wait_until(lambda: not any(_alive(pid) for pid in pids), 30, "every child to end with the launcher")
