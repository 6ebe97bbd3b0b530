"""Tests for the loopback port helpers the launcher, the test servers and the benchmarks share."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

from services.launcher.ports import free_port, free_ports, wait_for_port


def test_free_ports_are_distinct_and_bindable() -> None:
    ports = free_ports(5)
    assert len(set(ports)) == 5
    with socket.socket() as s:
        s.bind(("127.0.0.1", free_port()))


def test_one_process_never_gets_the_same_port_twice() -> None:
    """Two meshes planned in one process (the benchmarks start two) must not share a port before either binds it."""
    handed = [port for _ in range(40) for port in free_ports(15)]
    assert len(handed) == len(set(handed))


def test_free_ports_stay_out_of_the_ephemeral_range() -> None:
    """Outgoing connections take their local port from the ephemeral range; a planned port must not be one."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    assert all(port < low for port in free_ports(20))


def test_wait_for_port_sees_a_listener() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        assert wait_for_port(server.getsockname()[1], 5)


def test_wait_for_port_gives_up_at_the_deadline() -> None:
    started = time.monotonic()
    assert not wait_for_port(free_port(), 0.3, interval=0.05)
    assert time.monotonic() - started < 3


def test_wait_for_port_stops_when_the_process_has_exited() -> None:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    started = time.monotonic()
    assert not wait_for_port(free_port(), 30, process=process)
    assert time.monotonic() - started < 3
