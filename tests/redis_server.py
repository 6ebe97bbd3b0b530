"""A real redis-server (Debian package, installed by .ci/run), started once per test session on a free loopback port."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator

import pytest

from services.launcher.ports import free_port, wait_for_port


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server (Debian package, installed by .ci/run) on a free loopback port for the whole session."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server is not installed: .ci/run installs the Debian package"
    port = free_port()
    folder = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(folder)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        if not wait_for_port(port, 10, interval=0.05):
            pytest.fail("redis-server did not start within 10 s")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)
