"""Keeps a local mesh's processes running: one that dies is restarted with back-off, and the launcher says so."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable

import grpc
import httpx
from grpc_health.v1 import health_pb2

from services.launcher.processes import LocalMesh
from services.runtime import topology


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


class Supervisor:
    """Polls the mesh's children; restarts a dead one after 1 s, 2 s, 4 s ... (at most `max_delay`).

    A process that stayed up `stable_after` seconds starts again from the first delay. After a restart it
    reports when Envoy's health check sees the instance healthy again."""

    def __init__(
        self,
        mesh: LocalMesh,
        say: Callable[[str], None],
        *,
        poll: float = 0.5,
        first_delay: float = 1.0,
        max_delay: float = 30.0,
        stable_after: float = 60.0,
    ) -> None:
        self.mesh = mesh
        self.say = say
        self.poll = poll
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.stable_after = stable_after
        self.restarts: dict[str, int] = {}
        self._crashes: dict[str, int] = {}
        self._started: dict[str, float] = {}
        self._due: dict[str, float] = {}
        self._recovering: dict[str, float] = {}
        self._paused = threading.Event()
        self._finished = threading.Event()
        self._thread = threading.Thread(target=self._run, name="supervisor", daemon=True)

    def start(self) -> None:
        now = time.monotonic()
        self._started = {name: now for name in self.mesh.processes}
        # Stop restarting before the mesh stops its children; the thread (which started some of them, and
        # PR_SET_PDEATHSIG is per thread) ends only after they are stopped.
        self.mesh.before_stop.append(self._paused.set)
        self.mesh.after_stop.append(self.finish)
        self._thread.start()

    def finish(self) -> None:
        self._paused.set()
        self._finished.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(5)

    def _run(self) -> None:
        while not self._finished.wait(self.poll):
            if not self._paused.is_set():
                try:
                    self.tick(time.monotonic())
                except Exception as error:  # the supervisor must outlive any one failure
                    self.say(f"supervisor: {type(error).__name__}: {error}")

    def tick(self, now: float) -> None:
        for name, process in list(self.mesh.processes.items()):
            code = process.poll()
            if code is None or name in self._due:
                continue
            crashes = 0 if now - self._started.get(name, now) >= self.stable_after else self._crashes.get(name, 0)
            self._crashes[name] = crashes + 1
            delay = min(self.first_delay * 2**crashes, self.max_delay)
            self._due[name] = now + delay
            self._recovering.pop(name, None)
            self.say(f"{name} exited ({describe_exit(code)}); restarting in {delay:g}s")
        for name, due in sorted(self._due.items()):
            if now >= due and not self._paused.is_set():
                del self._due[name]
                pid = self.mesh.restart(name)
                self._started[name] = self._recovering[name] = now
                self.restarts[name] = self.restarts.get(name, 0) + 1
                self.say(f"{name} restarted (pid {pid})")
        if self._recovering:
            self._report_recovered(now)

    def _report_recovered(self, now: float) -> None:
        try:
            health = self.mesh.host_health()
        except (httpx.HTTPError, ValueError):
            return
        for name, since in list(self._recovering.items()):
            if name == "envoy":
                healthy = True  # its admin interface answered
            else:
                # The new process itself serves, and Envoy routes to it again.
                instance = self.mesh.plan[name]
                routed = health.get(instance.service, {}).get(f"127.0.0.1:{instance.port}") == "healthy"
                healthy = routed and _serving(instance.port, topology.service(instance.service).grpc_service)
            if healthy:
                del self._recovering[name]
                self.say(f"{name} is healthy again ({now - since:.1f}s after restart)")


def _serving(port: int, service: str) -> bool:
    """The instance's own grpc.health.v1 answer, asked directly (the launcher is its parent, not a mesh client)."""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        check = channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )
        try:
            response = check(health_pb2.HealthCheckRequest(service=service), timeout=1.0)
        except grpc.RpcError:
            return False
    return bool(response.status == health_pb2.HealthCheckResponse.SERVING)
