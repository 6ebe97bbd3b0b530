"""Every CLI failure is one clear line and a non-zero exit, never a traceback (against a stub edge)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from clients.rest import CLIENT_VERSION
from services.launcher.certificates import ensure_local
from services.launcher.ports import free_ports
from tests.unit.stub_edge import Answer, stub_edge


def cli(url: str, *args: str, key: str = "k-123", extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MCPMESH_", "MCP_API_KEY"))}
    env.update({"MCPMESH_URL": url, "MCP_API_KEY": key, "MCPMESH_CONFIG": "/nonexistent/mcpmesh.json",
                "MCPMESH_TOKEN_CACHE": "off", **(extra or {})})
    # cwd outside the repository: no .mcpmesh/tls/ca.crt of a running `make up` is picked up.
    return subprocess.run([sys.executable, "-m", "clients.cli", *args], capture_output=True, text=True, env=env,
                          cwd=tempfile.gettempdir(), timeout=60, check=False)


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def status(code: int, message: str) -> dict[str, object]:
    return {"code": code, "message": message, "details": []}


@pytest.mark.parametrize(
    ("http", "body", "headers", "expected"),
    [
        (401, status(16, "missing or unknown API key"), {"www-authenticate": "Bearer"}, ["not authenticated (HTTP 401)", "MCP_API_KEY", "mcpmesh login"]),
        (403, status(7, "role viewer may not call ListApiKeys"), {}, ["permission denied (HTTP 403)", "role viewer", "higher role"]),
        (404, status(5, "tool nope not found"), {}, ["not found (HTTP 404)", "tool nope not found"]),
        (429, status(8, "rate limit of key:abc reached"), {"retry-after": "7"}, ["rate limited (HTTP 429)", "retry after 7 s"]),
        (500, status(13, "database is locked"), {}, ["server failed (HTTP 500)", "database is locked", "mcpmesh health"]),
        (503, {"message": "no healthy upstream", "httpStatus": 503}, {}, ["server failed (HTTP 503)", "no healthy upstream"]),
    ],
)
def test_http_errors_are_one_line(http: int, body: dict[str, object], headers: dict[str, str], expected: list[str]) -> None:
    with stub_edge({"/v1/tools": Answer(http, body, headers)}) as edge:
        done = cli(edge.url, "tools", "list")
    assert done.returncode == 2
    line = one_line(done)
    for part in expected:
        assert part in line


def test_a_non_json_error_body_is_still_one_line() -> None:
    with stub_edge({"/v1/tools": Answer(502, b"upstream connect error", content_type="text/plain")}) as edge:
        done = cli(edge.url, "tools", "list", "--json")
    assert done.returncode == 2
    assert "HTTP 502" in one_line(done) and "upstream connect error" in done.stderr


def test_bad_input_names_the_field() -> None:
    body = {"code": 3, "message": "bad arguments", "details": [
        {"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": [{"field": "arguments.path", "description": "required"}]}]}
    with stub_edge({"POST /v1/tools/file_inventory/execute": Answer(400, body)}) as edge:
        done = cli(edge.url, "tools", "execute", "file_inventory", "--arg", "colour=red")
    assert done.returncode == 2
    assert "invalid request (HTTP 400)" in one_line(done) and "arguments.path: required" in done.stderr


def test_connection_refused() -> None:
    (port,) = free_ports(1)
    done = cli(f"http://127.0.0.1:{port}", "health")
    assert done.returncode == 2
    line = one_line(done)
    assert f"cannot connect to http://127.0.0.1:{port}" in line and "make up" in line


def test_untrusted_certificate_then_trusted(tmp_path: Path) -> None:
    edge_files = ensure_local(tmp_path / "edge")
    other_ca = ensure_local(tmp_path / "other").ca_cert
    answers = {"/v1/tools": Answer(200, {"tools": [{"name": "file_inventory", "description": "counts files"}]})}
    with stub_edge(answers, tls=(edge_files.server_cert, edge_files.server_key)) as edge:
        untrusted = cli(edge.url, "--ca-cert", str(other_ca), "tools", "list")
        system_only = cli(edge.url, "tools", "list")
        trusted = cli(edge.url, "tools", "list", extra={"MCPMESH_CA_CERT": str(edge_files.ca_cert)})
    for done in (untrusted, system_only):
        assert done.returncode == 2
        line = one_line(done)
        assert "TLS to https://127.0.0.1" in line and "certificate verify failed" in line and "--ca-cert" in line
    assert trusted.returncode == 0, trusted.stderr
    assert trusted.stdout.startswith("file_inventory")


def test_plain_http_port_with_https_url() -> None:
    with stub_edge({}) as edge:
        done = cli(edge.url.replace("http://", "https://"), "tools", "list")
    assert done.returncode == 2
    assert "does not speak TLS" in one_line(done)


def test_missing_key_is_explained() -> None:
    done = cli("http://127.0.0.1:1", "tools", "list", key="")
    assert done.returncode == 2
    assert "MCP_API_KEY" in one_line(done)


def test_headers_and_key(tmp_path: Path) -> None:
    with stub_edge({"/v1/tools": Answer(200, {"tools": []})}) as edge:
        done = cli(edge.url, "tools", "list", "--json")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    calls = [(method, path, headers) for method, path, headers, _ in edge.requests]
    # This stub has no token exchange (404), so the key itself is sent.
    assert [(m, p) for m, p, _ in calls] == [("POST", "/v1/tokens"), ("GET", "/v1/tools")]
    headers = calls[-1][2]
    assert headers["authorization"] == "Bearer k-123"
    assert headers["x-client-type"] == "cli" and headers["x-client-version"] == CLIENT_VERSION


def test_login_saves_a_private_config_that_later_commands_use(tmp_path: Path) -> None:
    config = tmp_path / "cfg" / "config.json"
    whoami = Answer(200, {"principal": "key:abc", "role": "ROLE_ADMIN", "displayName": "ci"})
    with stub_edge({"/v1/whoami": whoami, "/v1/tools": Answer(200, {"tools": []})}) as edge:
        done = cli(edge.url, "login", extra={"MCPMESH_CONFIG": str(config), "MCP_API_KEY": "k-saved"})
        assert done.returncode == 0, done.stderr
        assert "logged in" in done.stdout and "(admin)" in done.stdout
        assert stat.S_IMODE(config.stat().st_mode) == 0o600
        later = cli("", "tools", "list", key="", extra={"MCPMESH_CONFIG": str(config), "MCPMESH_URL": ""})
    assert later.returncode == 0, later.stderr
    assert edge.requests[-1][2]["authorization"] == "Bearer k-saved"


def test_shell_completion_script() -> None:
    done = subprocess.run([sys.executable, "-m", "clients.cli", "--show-completion", "bash"], capture_output=True, text=True,
                          env={**os.environ, "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "_MCPMESH_COMPLETE" in done.stdout and "complete" in done.stdout


def test_tokens_are_exchanged_and_kept_between_runs(tmp_path: Path) -> None:
    cache = tmp_path / "cache" / "tokens.json"
    answers = {"POST /v1/tokens": Answer(200, {"token": "jwt-1", "expireTime": "2999-01-01T00:00:00Z"}),
               "/v1/tools": Answer(200, {"tools": []})}
    with stub_edge(answers) as edge:
        for _ in range(2):
            done = cli(edge.url, "tools", "list", extra={"MCPMESH_TOKEN_CACHE": str(cache)})
            assert done.returncode == 0, done.stderr
    calls = [(method, path, headers.get("authorization")) for method, path, headers, _ in edge.requests]
    assert calls == [("POST", "/v1/tokens", "Bearer k-123"), ("GET", "/v1/tools", "Bearer jwt-1"), ("GET", "/v1/tools", "Bearer jwt-1")]
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600 and "k-123" not in cache.read_text()


def test_login_over_https_keeps_the_ca_that_worked(tmp_path: Path) -> None:
    files = ensure_local(tmp_path / "edge")
    config = tmp_path / "config.json"
    whoami = Answer(200, {"principal": "key:abc", "role": "ROLE_VIEWER", "displayName": "ci"})
    with stub_edge({"/v1/whoami": whoami}, tls=(files.server_cert, files.server_key)) as edge:
        done = cli(edge.url, "--ca-cert", str(files.ca_cert), "login", "--json", extra={"MCPMESH_CONFIG": str(config)})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["role"] == "ROLE_VIEWER"
    assert json.loads(config.read_text()) == {"url": edge.url, "api_key": "k-123", "ca_cert": str(files.ca_cert)}
