"""The launcher's supervisor: restarts with back-off, starts over after a stable run, stops restarting on shutdown."""

from __future__ import annotations

import signal
from dataclasses import dataclass, field
from typing import Any

from services.launcher.envoy_config import Instance
from services.launcher.supervisor import Supervisor, describe_exit


@dataclass
class FakeProcess:
    pid: int
    code: int | None = None

    def poll(self) -> int | None:
        return self.code


@dataclass
class FakeMesh:
    processes: dict[str, FakeProcess] = field(default_factory=dict)
    plan: dict[str, Any] = field(default_factory=dict)
    before_stop: list[Any] = field(default_factory=list)
    after_stop: list[Any] = field(default_factory=list)
    next_pid: int = 100

    def restart(self, name: str) -> int:
        self.next_pid += 1
        self.processes[name] = FakeProcess(self.next_pid)
        return self.next_pid

    def host_health(self) -> dict[str, dict[str, str]]:
        return {}


def _supervisor() -> tuple[Supervisor, FakeMesh, list[str]]:
    mesh = FakeMesh({"envoy": FakeProcess(1), "agents": FakeProcess(2)}, {"agents": Instance("agents", "agents", 1)})
    said: list[str] = []
    supervisor = Supervisor(mesh, said.append, stable_after=60)  # type: ignore[arg-type]
    supervisor._started = dict.fromkeys(mesh.processes, 0.0)
    return supervisor, mesh, said


def test_restart_delays_double_up_to_the_limit() -> None:
    supervisor, mesh, said = _supervisor()
    now = 1.0
    delays = []
    for _ in range(7):
        mesh.processes["agents"].code = -signal.SIGKILL
        supervisor.tick(now)
        delays.append(supervisor._due["agents"] - now)
        now = supervisor._due["agents"]
        supervisor.tick(now)
        assert mesh.processes["agents"].code is None  # restarted
    assert delays == [1, 2, 4, 8, 16, 30, 30]
    assert supervisor.restarts["agents"] == 7
    assert said[0] == "agents exited (signal SIGKILL); restarting in 1s"
    assert said[1] == "agents restarted (pid 101)"


def test_a_stable_process_starts_over_from_the_first_delay() -> None:
    supervisor, mesh, _ = _supervisor()
    mesh.processes["agents"].code = 1
    supervisor.tick(1.0)
    supervisor.tick(2.0)
    mesh.processes["agents"].code = 1
    supervisor.tick(100.0)  # ran 98 s: stable
    assert supervisor._due["agents"] == 101.0


def test_envoy_is_restarted_too_and_nothing_after_shutdown_began() -> None:
    supervisor, mesh, said = _supervisor()
    mesh.processes["envoy"].code = 0
    supervisor.tick(1.0)
    supervisor._paused.set()
    supervisor.tick(5.0)
    assert mesh.processes["envoy"].code == 0  # not restarted while stopping
    assert said == ["envoy exited (exit code 0); restarting in 1s"]


def test_exit_descriptions() -> None:
    assert describe_exit(-signal.SIGTERM) == "signal SIGTERM"
    assert describe_exit(3) == "exit code 3"
