"""Tests for reading a service's Config from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.runtime.config import DEFAULT_PORTS, Config


@pytest.mark.parametrize(("service", "port"), sorted(DEFAULT_PORTS.items()))
def test_default_port_per_service(service: str, port: int) -> None:
    config = Config.from_env(service, {})
    assert (config.service, config.port) == (service, port)


def test_unknown_service_defaults_to_port_zero() -> None:
    assert Config.from_env("other", {}).port == 0


def test_defaults_without_variables() -> None:
    config = Config.from_env("tools", {})
    assert config.host == "127.0.0.1"
    assert config.data_dir == Path(".mcpmesh")
    assert config.log_level == "INFO"
    assert config.grace_seconds == 10.0
    assert config.rate_limit_burst == 200
    assert config.workspace_roots == (Path.cwd(),)


def test_every_variable_is_parsed(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    env = {
        "MCPMESH_PORT": "4000",
        "MCPMESH_HOST": "0.0.0.0",
        "MCPMESH_DATA_DIR": str(tmp_path / "data"),
        "MCPMESH_MESH_ADDRESS": "127.0.0.1:11000",
        "MCPMESH_ENVOY_ADMIN_URL": "http://127.0.0.1:9999",
        "MCPMESH_WORKSPACE_ROOTS": f"{a}:{b}",
        "MCPMESH_LOG_LEVEL": "debug",
        "MCPMESH_GRACE_SECONDS": "2.5",
        "MCPMESH_DRAIN_SECONDS": "0",
        "MCPMESH_WS_PORT": "4100",
        "MCPMESH_RATE_LIMIT": "7.5",
        "MCPMESH_RATE_BURST": "3",
        "MCPMESH_MAX_FILES": "12",
    }
    config = Config.from_env("gateway", env)
    assert config.port == 4000
    assert config.host == "0.0.0.0"
    assert config.data_dir == tmp_path / "data"
    assert config.mesh_address == "127.0.0.1:11000"
    assert config.envoy_admin_url == "http://127.0.0.1:9999"
    assert config.workspace_roots == (a.resolve(), b.resolve())
    assert config.log_level == "DEBUG"
    assert config.grace_seconds == 2.5 and isinstance(config.grace_seconds, float)
    assert config.drain_seconds == 0.0
    assert config.ws_port == 4100
    assert config.rate_limit_per_second == 7.5
    assert config.rate_limit_burst == 3
    assert config.max_files == 12


def test_every_field_is_described() -> None:
    names = [name for name, _ in Config.describe()]
    assert "MCPMESH_PORT" in names and "MCPMESH_WORKSPACE_ROOTS" in names
    assert len(names) == len(set(names)) == 40


def test_workspace_roots_skip_empty_parts_and_resolve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = Config.from_env("tools", {"MCPMESH_WORKSPACE_ROOTS": "one::two:"})
    assert config.workspace_roots == (tmp_path / "one", tmp_path / "two")


def test_explicit_environ_ignores_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCPMESH_PORT", "4999")
    assert Config.from_env("tools", {}).port == 3002
    assert Config.from_env("tools").port == 4999


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("MCPMESH_PORT", "abc"),
        ("MCPMESH_PORT", "70000"),
        ("MCPMESH_PORT", "-1"),
        ("MCPMESH_WS_PORT", "65536"),
        ("MCPMESH_GRACE_SECONDS", "soon"),
        ("MCPMESH_DRAIN_SECONDS", ""),
        ("MCPMESH_RATE_LIMIT", "fast"),
        ("MCPMESH_RATE_BURST", "1.5"),
        ("MCPMESH_MAX_FILES", "many"),
        ("MCPMESH_LOG_LEVEL", "verbose"),
        ("MCPMESH_TOKEN_TTL", "5"),
    ],
)
def test_bad_values_exit_naming_the_variable(variable: str, value: str) -> None:
    with pytest.raises(SystemExit) as exited:
        Config.from_env("tools", {variable: value})
    message = str(exited.value.code)
    assert message.startswith(f"{variable}={value!r} is not valid")


def test_config_is_frozen() -> None:
    config = Config.from_env("tools", {})
    with pytest.raises(AttributeError):
        config.port = 1  # type: ignore[misc]


def test_a_setting_that_may_hold_a_password_is_not_printed_when_invalid() -> None:
    raw = '{"shop": "mysql://reader:hunter2@db/shop"}'
    with pytest.raises(SystemExit) as exited:
        Config.from_env("agents", {"MCPMESH_DATABASE_CONNECTIONS": raw})
    message = str(exited.value.code)
    assert message.startswith("MCPMESH_DATABASE_CONNECTIONS is not valid")
    assert "hunter2" not in message
