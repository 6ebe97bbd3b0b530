"""The edge's TLS files: made once, kept private, renewed when names change; operator files checked up front."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography import x509

from services.launcher.certificates import edge_tls, ensure_local


def _names(cert: Path) -> set[str]:
    san = x509.load_pem_x509_certificate(cert.read_bytes()).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(n) for n in san.get_values_for_type(x509.DNSName)} | {str(i) for i in san.get_values_for_type(x509.IPAddress)}


def test_made_once_private_and_signed_by_the_ca(tmp_path: Path) -> None:
    first = ensure_local(tmp_path)
    assert stat.S_IMODE((tmp_path / "tls").stat().st_mode) == 0o700
    for key in ("ca.key", "server.key"):
        assert stat.S_IMODE((tmp_path / "tls" / key).stat().st_mode) == 0o600
    made = {p.name: p.read_bytes() for p in (tmp_path / "tls").iterdir()}
    again = ensure_local(tmp_path)
    assert again == first and {p.name: p.read_bytes() for p in (tmp_path / "tls").iterdir()} == made
    server = x509.load_pem_x509_certificate(first.server_cert.read_bytes())
    ca = x509.load_pem_x509_certificate(first.ca_cert.read_bytes())
    server.verify_directly_issued_by(ca)
    assert _names(first.server_cert) == {"localhost", "127.0.0.1", "::1"}


def test_a_new_name_reissues_the_server_certificate_with_the_same_ca(tmp_path: Path) -> None:
    first = ensure_local(tmp_path)
    ca = first.ca_cert.read_bytes()
    edge_tls(tmp_path, {"MCPMESH_TLS_HOSTS": "mesh.example.test, 10.0.0.7"})
    assert _names(first.server_cert) == {"localhost", "127.0.0.1", "::1", "mesh.example.test", "10.0.0.7"}
    assert first.ca_cert.read_bytes() == ca


def test_operator_files(tmp_path: Path) -> None:
    own = ensure_local(tmp_path / "own")
    chosen = edge_tls(tmp_path / "data", {"MCPMESH_TLS_CERT": str(own.server_cert), "MCPMESH_TLS_KEY": str(own.server_key)})
    assert chosen.server_cert == own.server_cert and not (tmp_path / "data" / "tls").exists()
    with pytest.raises(SystemExit, match="MCPMESH_TLS_KEY"):
        edge_tls(tmp_path, {"MCPMESH_TLS_CERT": str(own.server_cert)})
    with pytest.raises(SystemExit, match="not an unencrypted PEM"):
        edge_tls(tmp_path, {"MCPMESH_TLS_CERT": str(own.ca_cert), "MCPMESH_TLS_KEY": str(own.ca_cert)})
