"""The HTTPS edge: a local CA and server certificate made at first start, trusted by the CLI, REST and gRPC over TLS."""

from __future__ import annotations

import json
import os
import shutil
import ssl
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
from cryptography import x509

from services.launcher.processes import LocalMesh

GRPCURL = shutil.which("grpcurl", path=str(Path(sys.executable).parent)) or "grpcurl"


def _cli(url: str, key: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MCPMESH_", "MCP_API_KEY"))}
    env.update({"MCPMESH_URL": url, "MCP_API_KEY": key, "MCPMESH_CONFIG": "/nonexistent/mcpmesh.json", "MCPMESH_TOKEN_CACHE": "off"})
    return subprocess.run([sys.executable, "-m", "clients.cli", *args], capture_output=True, text=True, env=env,
                          cwd=tempfile.gettempdir(), timeout=120, check=False)


def test_certificates_made_at_first_start_with_private_keys(mesh: LocalMesh) -> None:
    assert mesh.tls is not None
    folder = mesh.data_dir / "tls"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for key in ("ca.key", "server.key"):
        assert stat.S_IMODE((folder / key).stat().st_mode) == 0o600
    server = x509.load_pem_x509_certificate(mesh.tls.server_cert.read_bytes())
    ca = x509.load_pem_x509_certificate(mesh.tls.ca_cert.read_bytes())
    assert server.issuer == ca.subject
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)


def test_rest_over_https_verified_by_the_local_ca(mesh: LocalMesh, admin_key: str) -> None:
    assert mesh.tls is not None
    headers = {"Authorization": f"Bearer {admin_key}"}
    with httpx.Client(base_url=mesh.https_url, verify=ssl.create_default_context(cafile=str(mesh.tls.ca_cert)),
                      headers=headers, http2=False, timeout=30) as client:
        answer = client.get("/v1/tools")
    assert answer.status_code == 200 and answer.json()["tools"]
    # Plain HTTP stays for local use.
    assert httpx.get(f"{mesh.edge_url}/v1/tools", headers=headers, timeout=30).status_code == 200


def test_cli_over_https(mesh: LocalMesh, admin_key: str, sample_project: Path) -> None:
    assert mesh.tls is not None
    trusted = _cli(mesh.https_url, admin_key, "--ca-cert", str(mesh.tls.ca_cert), "workflows", "create",
                   "--path", str(sample_project), "--watch")
    assert trusted.returncode == 0, trusted.stderr
    assert trusted.stdout.strip().splitlines()[-1].startswith("5 files")
    untrusted = _cli(mesh.https_url, admin_key, "tools", "list")
    assert untrusted.returncode == 2 and "Traceback" not in untrusted.stderr
    assert "certificate verify failed" in untrusted.stderr and "--ca-cert" in untrusted.stderr


def test_grpc_over_tls(mesh: LocalMesh, admin_key: str) -> None:
    assert mesh.tls is not None
    done = subprocess.run(
        [GRPCURL, "-cacert", str(mesh.tls.ca_cert), "-H", f"authorization: Bearer {admin_key}",
         f"localhost:{mesh.ports.edge_https}", "mcpmesh.tools.v1.ToolService/ListTools"],
        capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    assert "file_inventory" in [t["name"] for t in json.loads(done.stdout)["tools"]]
