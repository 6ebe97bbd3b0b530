"""Conformance suite of the signing key source port: a 0600 file, and AWS Secrets Manager against moto's server mode."""

from __future__ import annotations

import stat
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from services.runtime.identity import Identity
from services.runtime.signing_keys import FileKeySource, SecretsManagerKeySource, SigningKeySource, key_source
from services.runtime.tokens import Verifier, issue


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """moto in server mode (real HTTP, boto3 talks to it as to AWS), once per session on a free loopback port."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(params=["file", "secretsmanager"])
def make_source(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    if request.param == "file":
        return lambda: FileKeySource(tmp_path / "keys" / "signing-keys.json")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    endpoint = request.getfixturevalue("moto_url")
    secret = f"mcpmesh/signing-keys/{uuid.uuid4().hex}"
    return lambda: SecretsManagerKeySource(secret, endpoint_url=endpoint, region="us-east-1")


async def test_first_load_makes_a_key_and_later_loads_return_it(make_source) -> None:
    source: SigningKeySource = make_source()
    first = await source.load()
    again = await make_source().load()  # another process, same place
    assert again.current.kid == first.current.kid and again.current.private_pem == first.current.private_pem
    assert first.previous == ()


async def test_a_rotated_ring_is_saved_and_old_tokens_still_verify(make_source) -> None:
    source: SigningKeySource = make_source()
    ring = await source.load()
    token, _ = issue(ring, Identity("key:a", "viewer"), ttl=600)
    await source.save(ring.rotated(keep_seconds=900))
    loaded = await make_source().load()
    assert loaded.current.kid != ring.current.kid
    assert [k.kid for k in loaded.previous] == [ring.current.kid]
    assert Verifier(loaded.all()).verify(token).principal == "key:a"


async def test_a_secret_made_without_a_value_gets_one_ring(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """CloudFormation makes the secret empty; instances starting together agree on the first ring."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    name = f"mcpmesh/empty/{uuid.uuid4().hex}"
    boto3.client("secretsmanager", endpoint_url=moto_url, region_name="us-east-1").create_secret(Name=name)
    sources = [SecretsManagerKeySource(name, endpoint_url=moto_url, region="us-east-1") for _ in range(2)]
    first, second = [await s.load() for s in sources]
    assert first.current.kid == second.current.kid
    assert (await sources[0].load()).current.kid == first.current.kid


def test_instances_starting_together_share_the_first_key_file(tmp_path: Path) -> None:
    """Several processes start on one data folder at once: none reads a half-written file, all get one ring."""
    from concurrent.futures import ThreadPoolExecutor

    path = tmp_path / "keys" / "signing-keys.json"
    for _ in range(20):
        path.unlink(missing_ok=True)
        with ThreadPoolExecutor(max_workers=8) as pool:
            rings = list(pool.map(lambda _: FileKeySource(path)._load(), range(8)))
        assert len({r.current.kid for r in rings}) == 1
    assert [p.name for p in path.parent.iterdir()] == ["signing-keys.json"]  # no temporary file left behind


async def test_the_key_file_is_private(tmp_path: Path) -> None:
    source = FileKeySource(tmp_path / "signing-keys.json")
    ring = await source.load()
    assert stat.S_IMODE(source.path.stat().st_mode) == 0o600
    await source.save(ring.rotated(keep_seconds=60))
    assert stat.S_IMODE(source.path.stat().st_mode) == 0o600


def test_key_source_urls(tmp_path: Path) -> None:
    default = key_source("", tmp_path)
    assert isinstance(default, FileKeySource) and default.path == tmp_path / "signing-keys.json"
    assert isinstance(key_source("file:///etc/mcpmesh/keys.json", tmp_path), FileKeySource)
    remote = key_source("secretsmanager://mcpmesh-keys?endpoint=http://127.0.0.1:1&region=eu-west-1", tmp_path)
    assert isinstance(remote, SecretsManagerKeySource) and remote.secret_id == "mcpmesh-keys"
    with pytest.raises(ValueError):
        key_source("vault://x", tmp_path)
