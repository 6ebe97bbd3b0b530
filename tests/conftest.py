"""Session fixtures: a real local mesh (Envoy + four services) on free loopback ports, and a fixture project."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.launcher.envoy_config import Ports
from services.launcher.processes import LocalMesh
from tests.dynamodb import dynamodb_endpoint, monkeypatch_session  # noqa: F401  (session fixture: DynamoDB Local)
from tests.moto_server import moto_endpoint  # noqa: F401  (session fixture: moto's S3 server)
from tests.otlp_receiver import receiver  # noqa: F401  (module fixture: an OTLP/HTTP trace receiver)
from tests.postgres import postgres  # noqa: F401  (session fixture: a real PostgreSQL server)
from tests.redis_server import redis_url  # noqa: F401  (session fixture: a real redis-server)

# A project with known content: what the agent must find and the tool must count.
SAMPLE_FILES = {
    "app/main.py": (
        "import subprocess\n"
        "\n"
        "def handler(data, seen=[]):\n"
        "    try:\n"
        "        return eval(data)\n"
        "    except:\n"
        "        return None\n"
        "\n"
        "def run(cmd):\n"
        "    subprocess.run(cmd, shell=True)\n"
    ),
    "app/settings.py": 'API_KEY = "hunter2"\nDEBUG = True\n',
    "app/clean.py": '"""Nothing wrong here."""\n\n\ndef add(a, b):\n    return a + b\n',
    "web/index.js": "console.log('hi');\nexport const x = 1;\n",
    "README.md": "# Sample\n\nA fixture project.\n",
}


def write_sample_project(root: Path) -> Path:
    for name, text in SAMPLE_FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def wait_until(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    """Polls `condition` until it returns something truthy; fails the test with `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture(scope="session")
def sample_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_sample_project(tmp_path_factory.mktemp("workspace") / "sample")


def start_mesh(data_dir: Path, workspace: Path, instances: dict[str, int] | None = None, **env: str) -> LocalMesh:
    mesh = LocalMesh(data_dir, ports=Ports.free(), workspace_roots=[workspace], extra_env=env, instances=instances or {})
    try:
        mesh.start(timeout=90)
    except BaseException:
        mesh.stop()
        raise
    return mesh


@pytest.fixture(scope="session")
def mesh(tmp_path_factory: pytest.TempPathFactory, sample_project: Path) -> Iterator[LocalMesh]:
    running = start_mesh(tmp_path_factory.mktemp("mesh"), sample_project.parent)
    yield running
    running.stop()


@pytest.fixture(scope="session")
def admin_key(mesh: LocalMesh) -> str:
    return mesh.admin_key()


@pytest.fixture()
def rest(mesh: LocalMesh, admin_key: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=mesh.edge_url, headers={"Authorization": f"Bearer {admin_key}"}, timeout=60) as client:
        yield client
