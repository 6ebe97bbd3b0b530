"""The keys that sign identity tokens: a key ring kept in a 0600 file (made at first start) or in AWS Secrets Manager.

The ring holds the current key, the next key, and the keys rotated out of use, each with the time it was retired;
a retired key keeps verifying until every token it signed has expired (`keep_seconds`), then it is dropped. The
next key is published (JWKS, every verifier) from the moment it is made, long before it signs anything: a rotation
promotes it, so whoever caches the public keys (the edge, for 5 s) already knows the key of the first new token."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_pem: str
    retired: float | None = None  # when it stopped signing; None for the current and the next key
    announced: float | None = None  # the next key: when it was published; None for the others

    @cached_property
    def private_key(self) -> ec.EllipticCurvePrivateKey:
        key = serialization.load_pem_private_key(self.private_pem.encode(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return key

    def public_jwk(self) -> dict[str, str]:
        jwk: dict[str, str] = json.loads(ECAlgorithm.to_jwk(self.private_key.public_key()))
        return {**jwk, "kid": self.kid, "alg": "ES256", "use": "sig"}

    @classmethod
    def generate(cls, announced: float | None = None) -> SigningKey:
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        return cls(secrets.token_hex(8), pem.decode(), announced=announced)


@dataclass(frozen=True)
class KeyRing:
    current: SigningKey
    previous: tuple[SigningKey, ...] = field(default=())
    upcoming: SigningKey | None = None  # the next key: published now, signing after the next rotation

    @classmethod
    def fresh(cls, now: float | None = None) -> KeyRing:
        """A first ring: a current key and, published from the start, the next one."""
        return cls(SigningKey.generate(), upcoming=SigningKey.generate(announced=time.time() if now is None else now))

    def all(self) -> list[SigningKey]:
        """Every key that verifies (and is published): current, next, retired."""
        return [self.current, *([self.upcoming] if self.upcoming is not None else []), *self.previous]

    def announcing(self, now: float | None = None) -> KeyRing:
        """This ring with a next key published from `now` (a ring saved before keys were announced has none)."""
        if self.upcoming is not None:
            return self
        return KeyRing(self.current, self.previous, SigningKey.generate(announced=time.time() if now is None else now))

    def announced_for(self, now: float | None = None) -> float:
        """Seconds since the next key was published (0 when there is none)."""
        if self.upcoming is None or self.upcoming.announced is None:
            return 0.0
        return (time.time() if now is None else now) - self.upcoming.announced

    def rotated(self, keep_seconds: float, now: float | None = None) -> KeyRing:
        """The next key becomes the current one (a fresh one without a next key) and a new next key is published;
        the old current key retires now; keys retired longer than `keep_seconds` ago are dropped."""
        now = time.time() if now is None else now
        retired = SigningKey(self.current.kid, self.current.private_pem, now)
        kept = tuple(k for k in (retired, *self.previous) if k.retired is not None and now - k.retired < keep_seconds)
        promoted = SigningKey(self.upcoming.kid, self.upcoming.private_pem) if self.upcoming is not None else SigningKey.generate()
        return KeyRing(promoted, kept, SigningKey.generate(announced=now))

    def to_json(self) -> str:
        keys = [{"kid": k.kid, "private_pem": k.private_pem, "retired": k.retired, "announced": k.announced} for k in self.all()]
        return json.dumps({"keys": keys})

    @classmethod
    def from_json(cls, text: str) -> KeyRing:
        keys = [SigningKey(k["kid"], k["private_pem"], k.get("retired"), k.get("announced")) for k in json.loads(text)["keys"]]
        if not keys or keys[0].retired is not None or keys[0].announced is not None:
            raise ValueError("a key ring needs a current key first")
        upcoming = [k for k in keys[1:] if k.announced is not None]
        return cls(keys[0], tuple(k for k in keys[1:] if k.announced is None), upcoming[0] if upcoming else None)


class SigningKeySource(Protocol):
    """Where the ring lives. `load` makes one at first start; `save` stores a rotated ring."""

    async def load(self) -> KeyRing: ...

    async def save(self, ring: KeyRing) -> None: ...


class FileKeySource:
    """A JSON file, mode 0600, created with a fresh key on first load."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def load(self) -> KeyRing:
        return await asyncio.to_thread(self._load)

    def _load(self) -> KeyRing:
        if self.path.exists():
            return KeyRing.from_json(self.path.read_text())
        ring = KeyRing.fresh()
        try:
            self._write(ring, exclusive=True)
        except FileExistsError:  # another instance made it first: use theirs
            return KeyRing.from_json(self.path.read_text())
        return ring

    async def save(self, ring: KeyRing) -> None:
        await asyncio.to_thread(self._write, ring, False)

    def _write(self, ring: KeyRing, exclusive: bool) -> None:
        """Writes beside, then puts the whole file in place, so a reader never sees half a file: by rename, or
        when `exclusive` by a hard link, which fails (FileExistsError) when another instance's ring is there."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f"{self.path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(ring.to_json())
            if exclusive:
                os.link(temporary, self.path)
            else:
                os.replace(temporary, self.path)
        finally:
            temporary.unlink(missing_ok=True)


FIRST_VERSION = "mcpmesh-first-signing-key-ring-0000000000"  # 32-64 characters, as Secrets Manager wants


class SecretsManagerKeySource:
    """One secret (string) holding the ring's JSON; created with a fresh key when it does not exist."""

    def __init__(self, secret_id: str, *, endpoint_url: str = "", region: str = "") -> None:
        import boto3

        self.secret_id = secret_id
        options: dict[str, Any] = {"region_name": region or os.environ.get("AWS_REGION") or "us-east-1"}
        if endpoint_url:
            options["endpoint_url"] = endpoint_url
        self._client = boto3.client("secretsmanager", **options)

    async def load(self) -> KeyRing:
        return await asyncio.to_thread(self._load)

    def _load(self) -> KeyRing:
        errors = self._client.exceptions
        try:
            return self._read()
        except errors.ResourceNotFoundException:  # no secret, or one made without a value (CloudFormation does)
            pass
        ring = KeyRing.fresh()
        try:
            self._client.create_secret(Name=self.secret_id, SecretString=ring.to_json())
            return ring
        except errors.ResourceExistsException:
            pass
        try:  # it exists: another instance made it meanwhile, or it has no value yet
            return self._read()
        except errors.ResourceNotFoundException:
            pass
        try:
            # The first value: one fixed version id, so when several instances start at once one ring wins and
            # the others read it (the same token with other content is refused).
            self._client.put_secret_value(SecretId=self.secret_id, SecretString=ring.to_json(), ClientRequestToken=FIRST_VERSION)
            return ring
        except errors.ResourceExistsException:
            return self._read()

    def _read(self) -> KeyRing:
        return KeyRing.from_json(self._client.get_secret_value(SecretId=self.secret_id)["SecretString"])

    async def save(self, ring: KeyRing) -> None:
        await asyncio.to_thread(self._client.put_secret_value, SecretId=self.secret_id, SecretString=ring.to_json())


def key_source(url: str, data_dir: Path) -> SigningKeySource:
    """`` (a file in the data folder), `file:///ABSOLUTE/PATH`, or `secretsmanager://SECRET_ID?endpoint=URL&region=R`."""
    if not url:
        return FileKeySource(data_dir / "signing-keys.json")
    parts = urlsplit(url)
    if parts.scheme == "file" and parts.path:
        return FileKeySource(Path(parts.path))
    if parts.scheme == "secretsmanager" and parts.netloc:
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        return SecretsManagerKeySource(parts.netloc, endpoint_url=query.get("endpoint", ""), region=query.get("region", ""))
    raise ValueError("expected empty, file:///PATH or secretsmanager://SECRET_ID?endpoint=URL&region=R")
