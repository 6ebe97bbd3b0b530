"""Loopback ports for local processes: free ones to bind, and waiting until one accepts connections."""

from __future__ import annotations

import socket
import subprocess
import time


def free_ports(count: int) -> list[int]:
    """`count` distinct free loopback ports (all held at once while picking, so none repeats)."""
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
