"""The package works installed outside the repository, as in a container: no path leans on the repository's layout."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from services.launcher.processes import envoy_binary

REPO = Path(__file__).resolve().parents[2]
PROBE = """
import importlib, sys
sys.path.insert(0, sys.argv[1])
from services.runtime import topology
import services.launcher.edge as edge
assert edge.__file__.startswith(sys.argv[1]), edge.__file__
for name in topology.NAMES:
    importlib.import_module(f"services.{name}.app")
folder, text = edge.config_text()
(folder / "envoy.yaml").parent.mkdir(parents=True, exist_ok=True)
(folder / "envoy.yaml").write_text(text)
print(folder / "envoy.yaml")
"""


def test_installed_copy_renders_the_container_config_and_imports_every_service(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    for folder in ("services", "clients", "generated"):
        shutil.copytree(REPO / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(site), str(source)], check=True, timeout=300, capture_output=True)
    envoy_files = tmp_path / "envoy-files"
    shutil.copytree(REPO / "envoy", envoy_files)
    elsewhere = tmp_path / "run"
    elsewhere.mkdir()
    env = {**os.environ, "MCPMESH_ENVOY_DIR": str(envoy_files), "MCPMESH_DATA_DIR": str(tmp_path / "data")}
    # -I: the repository is not on the path, only the installed copy (and the venv's dependencies).
    done = subprocess.run([sys.executable, "-I", "-c", PROBE, str(site)], cwd=elsewhere, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    config = Path(done.stdout.strip())
    assert str(envoy_files / "mcpmesh.pb") in config.read_text()
    validated = subprocess.run([envoy_binary(), "--mode", "validate", "-c", str(config)], cwd=elsewhere,
                               capture_output=True, text=True, timeout=60, check=False)
    assert validated.returncode == 0, validated.stdout + validated.stderr

    missing = subprocess.run([sys.executable, "-I", "-c", PROBE, str(site)], cwd=elsewhere,
                             env={**env, "MCPMESH_ENVOY_DIR": str(tmp_path / "nowhere")},
                             capture_output=True, text=True, timeout=120, check=False)
    assert missing.returncode != 0 and "MCPMESH_ENVOY_DIR" in missing.stderr
