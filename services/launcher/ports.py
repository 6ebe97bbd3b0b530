"""Loopback ports for local processes: free ones to bind, and waiting until one accepts connections."""

from __future__ import annotations

import random
import socket
import subprocess
import time
from pathlib import Path

# Ports are picked below the kernel's ephemeral range. A port handed out by bind(0) comes from that range, and
# between picking it and the child process binding it (seconds later, or after a restart) any outgoing
# connection on the host may take it as its local port: "Address already in use" in a child, now and then.
_LOWEST = 10000
_handed_out: set[int] = set()  # ports this process gave out already: two meshes in one process never share one


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_ports(count: int) -> list[int]:
    """`count` distinct free loopback ports outside the ephemeral range (all held at once while picking)."""
    top = _ephemeral_start()
    if top - _LOWEST < 1000:  # an unusual kernel setting: fall back to what the kernel hands out
        return _kernel_ports(count)
    held: list[socket.socket] = []
    try:
        for port in random.sample(range(_LOWEST, top), min(top - _LOWEST, 50 * count + 100)):
            if port in _handed_out:
                continue
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                s.close()
                continue
            held.append(s)
            if len(held) == count:
                break
        ports = [h.getsockname()[1] for h in held]
        ports += _kernel_ports(count - len(ports))
        _handed_out.update(ports)
        return ports
    finally:
        for s in held:
            s.close()


def _kernel_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def free_port() -> int:
    return free_ports(1)[0]


def wait_for_port(port: int, timeout: float, *, process: subprocess.Popen[bytes] | None = None, interval: float = 0.1) -> bool:
    """True once 127.0.0.1:`port` accepts a connection; False at the deadline, or as soon as `process` has exited."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            pass
        if (process is not None and process.poll() is not None) or time.monotonic() > deadline:
            return False
        time.sleep(interval)
