"""A real PostgreSQL server from Debian's packages, started once per test session on a free loopback port."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from services.launcher.ports import free_port, wait_for_port


@dataclass(frozen=True)
class PostgresServer:
    port: int
    dsn: str  # as the postgres superuser, database "postgres"

    def database_dsn(self, name: str) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={name} connect_timeout=10"


def pg_binary(name: str) -> str:
    """initdb / pg_ctl from PATH, or from Debian's versioned folder, which the postgresql package does not put on PATH."""
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if not found:
        pytest.fail(f"{name} not found: install Debian's postgresql package (.ci/run does)")
    return found


def _as_postgres(command: list[str]) -> list[str]:
    # initdb refuses to run as root; the server then runs as the postgres user, on a folder that user owns.
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def _run(command: list[str], what: str) -> None:
    done = subprocess.run(_as_postgres(command), capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        pytest.fail(f"{what} failed ({done.returncode}): {done.stderr or done.stdout}")


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    folder = Path(tempfile.mkdtemp(prefix="mcpmesh-pg-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    data, log = folder / "data", folder / "server.log"
    _run([pg_binary("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"], "initdb")
    port = free_port()
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    _run([pg_binary("pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60", "start"], "pg_ctl start")
    try:
        server = PostgresServer(port, f"host=127.0.0.1 port={port} user=postgres dbname=postgres connect_timeout=10")
        _wait_ready(port)
        yield server
    finally:
        subprocess.run(_as_postgres([pg_binary("pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
                       capture_output=True, timeout=60, check=False)
        shutil.rmtree(folder, ignore_errors=True)


def _wait_ready(port: int, timeout: float = 30) -> None:
    if not wait_for_port(port, timeout):
        pytest.fail(f"PostgreSQL did not accept connections on port {port} within {timeout}s")
