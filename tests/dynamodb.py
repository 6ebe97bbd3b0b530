"""DynamoDB Local (the real jar from the npm package amplify-dynamodb-simulator, run with Java) for one test session."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from services.launcher.ports import free_port, wait_for_port

EMULATOR = Path(__file__).resolve().parent.parent / ".tools/node_modules/amplify-dynamodb-simulator/emulator"
REGION = "us-east-1"


@pytest.fixture(scope="session")
def dynamodb_endpoint(tmp_path_factory: pytest.TempPathFactory, monkeypatch_session: pytest.MonkeyPatch) -> Iterator[str]:
    """Starts DynamoDB Local in memory on a free loopback port once per session; stops it at the end."""
    java = shutil.which("java")
    if java is None or not (EMULATOR / "DynamoDBLocal.jar").is_file():
        pytest.fail("DynamoDB Local needs java and the npm package amplify-dynamodb-simulator in .tools (see .ci/run)")
    # boto3 wants credentials and a region even for DynamoDB Local; any values do.
    for name, value in {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch_session.setenv(name, value)
    port = free_port()
    log = tmp_path_factory.mktemp("dynamodb") / "dynamodb-local.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [java, "-Djava.library.path=DynamoDBLocal_lib", "-jar", "DynamoDBLocal.jar", "-inMemory",
             "-port", str(port)],
            cwd=EMULATOR, stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        if not wait_for_port(port, 60, process=process, interval=0.2):
            pytest.fail(f"DynamoDB Local did not start: {log.read_text()[-2000:]}")
        endpoint = f"http://127.0.0.1:{port}"
        monkeypatch_session.setenv("AWS_ENDPOINT_URL_DYNAMODB", endpoint)  # boto3 clients made in tests use it
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@pytest.fixture(scope="session")
def monkeypatch_session() -> Iterator[pytest.MonkeyPatch]:
    patch = pytest.MonkeyPatch()
    yield patch
    patch.undo()


def tables_for(place: Path, create_tables: Callable[[Any, str], object]) -> tuple[Any, str]:
    """A boto3 client for DynamoDB Local (the dynamodb_endpoint fixture must be active) and a table prefix of this
    test's own, named after its folder, whose tables `create_tables(client, prefix)` has made."""
    client = boto3.client("dynamodb")  # endpoint, region and credentials from the dynamodb_endpoint fixture
    prefix = "t" + hashlib.sha256(str(place).encode()).hexdigest()[:16]
    create_tables(client, prefix)
    return client, prefix
