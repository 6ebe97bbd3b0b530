"""The edge's TLS files: a local CA and a server certificate made at first start, or files the operator supplies."""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from services.runtime.clock import utcnow

# Where the CLI looks for the local CA too (clients/settings.py LOCAL_CA), relative to the data folder.
TLS_FOLDER = "tls"
CA_YEARS = 10
SERVER_DAYS = 397  # what browsers accept for a server certificate
RENEW_BEFORE = datetime.timedelta(days=30)
HOSTS = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class TlsFiles:
    """PEM files: the CA that clients trust, the edge's certificate chain and its private key."""

    ca_cert: Path
    server_cert: Path
    server_key: Path


def _write_private(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    # Created 0600 before any byte is written, so the key is never readable by others.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    os.chmod(path, 0o600)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mcpmesh local"), x509.NameAttribute(NameOID.COMMON_NAME, common_name)])



def _make_ca(folder: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = utcnow()
    cert = (
        x509.CertificateBuilder().subject_name(_name("mcpmesh local CA")).issuer_name(_name("mcpmesh local CA"))
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=365 * CA_YEARS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_private(folder / "ca.key", key)
    (folder / "ca.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


def _make_server(folder: Path, ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, hosts: tuple[str, ...]) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    now = utcnow()
    cert = (
        x509.CertificateBuilder().subject_name(_name(hosts[0])).issuer_name(ca.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=SERVER_DAYS))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write_private(folder / "server.key", key)
    (folder / "server.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _needs_new_server(folder: Path, ca: x509.Certificate, hosts: tuple[str, ...]) -> bool:
    try:
        cert = x509.load_pem_x509_certificate((folder / "server.crt").read_bytes())
        (folder / "server.key").stat()
    except (OSError, ValueError):
        return True
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    covered = {str(n) for n in san.get_values_for_type(x509.DNSName)} | {str(i) for i in san.get_values_for_type(x509.IPAddress)}
    return cert.issuer != ca.subject or cert.not_valid_after_utc - RENEW_BEFORE < utcnow() or not set(hosts) <= covered


def ensure_local(data_dir: Path, hosts: tuple[str, ...] = HOSTS) -> TlsFiles:
    """The local CA and server certificate under data_dir/tls, made when missing, renewed 30 days before expiry."""
    folder = data_dir / TLS_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    try:
        ca = x509.load_pem_x509_certificate((folder / "ca.crt").read_bytes())
        loaded = serialization.load_pem_private_key((folder / "ca.key").read_bytes(), password=None)
        if not isinstance(loaded, ec.EllipticCurvePrivateKey) or ca.not_valid_after_utc - RENEW_BEFORE < utcnow():
            raise ValueError("replace the CA")
        ca_key = loaded
    except (OSError, ValueError):
        ca, ca_key = _make_ca(folder)
    if _needs_new_server(folder, ca, hosts):
        _make_server(folder, ca, ca_key, hosts)
    return TlsFiles(folder / "ca.crt", folder / "server.crt", folder / "server.key")


def supplied(cert: str, key: str, ca: str = "") -> TlsFiles:
    """Operator files (MCPMESH_TLS_CERT / MCPMESH_TLS_KEY, optional MCPMESH_TLS_CA); checked so Envoy does not fail later."""
    for label, value in (("certificate", cert), ("private key", key)):
        if not value or not Path(value).is_file():
            raise SystemExit(f"TLS {label} file {value!r} not found: set MCPMESH_TLS_CERT and MCPMESH_TLS_KEY to PEM files")
    try:
        x509.load_pem_x509_certificate(Path(cert).read_bytes())
        serialization.load_pem_private_key(Path(key).read_bytes(), password=None)
    except ValueError as error:
        raise SystemExit(f"TLS files {cert} / {key} are not an unencrypted PEM certificate and key: {error}") from error
    return TlsFiles(Path(ca or cert).resolve(), Path(cert).resolve(), Path(key).resolve())


def edge_tls(data_dir: Path, env: dict[str, str] | os._Environ[str] = os.environ) -> TlsFiles:
    """Operator files when MCPMESH_TLS_CERT is set, else the local CA's (MCPMESH_TLS_HOSTS adds names, comma-separated)."""
    if env.get("MCPMESH_TLS_CERT") or env.get("MCPMESH_TLS_KEY"):
        return supplied(env.get("MCPMESH_TLS_CERT", ""), env.get("MCPMESH_TLS_KEY", ""), env.get("MCPMESH_TLS_CA", ""))
    extra = tuple(h.strip() for h in env.get("MCPMESH_TLS_HOSTS", "").split(",") if h.strip() and h.strip() not in HOSTS)
    return ensure_local(data_dir, HOSTS + extra)
