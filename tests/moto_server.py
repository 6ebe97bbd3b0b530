"""moto's standalone S3 (and other AWS) server, started once per test session on a free loopback port."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from services.launcher.ports import free_port, wait_for_port

# moto accepts any credentials; boto3 only needs some to sign requests.
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The server's URL, such as http://127.0.0.1:PORT; it is stopped at the end of the session."""
    port = free_port()
    log = (tmp_path_factory.mktemp("moto") / "moto.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                               stdout=log, stderr=subprocess.STDOUT)
    try:
        if not wait_for_port(port, 30, process=process, interval=0.05):
            raise RuntimeError(f"moto server did not start (exit {process.poll()})")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
