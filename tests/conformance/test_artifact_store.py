"""Conformance suite of the artifact store port: the local folder, and S3 against moto's server mode."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import boto3
import pytest

from services.runtime.artifacts import ArtifactStore, ArtifactsUrl, open_artifact_store
from services.runtime.artifacts_local import LocalArtifactStore
from services.runtime.artifacts_s3 import S3ArtifactStore
from services.runtime.errors import InvalidArgument, NotFound, Unavailable
from tests.moto_server import CREDENTIALS


@pytest.fixture(params=["local", "s3"])
async def store(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[ArtifactStore]:
    if request.param == "local":
        yield LocalArtifactStore(tmp_path / "artifacts")
        return
    endpoint = request.getfixturevalue("moto_endpoint")
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    bucket = f"artifacts-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
    # Built from its URL, as the service builds it.
    yield open_artifact_store(f"s3://{bucket}/mcpmesh?endpoint={endpoint}&region=us-east-1", tmp_path)


async def test_put_get_round_trip(store: ArtifactStore) -> None:
    info = await store.put("docs/shop/index.md", b"# Shop\n")
    assert (info.name, info.media_type, info.size) == ("docs/shop/index.md", "text/markdown", 7)
    got, content = await store.get("docs/shop/index.md")
    assert content == b"# Shop\n"
    assert (got.name, got.media_type, got.size) == ("docs/shop/index.md", "text/markdown", 7)
    await store.put("docs/shop/index.md", b"# Shop v2\n")
    assert (await store.get("docs/shop/index.md"))[1] == b"# Shop v2\n"
    await store.ping()


async def test_missing_artifact_is_not_found(store: ArtifactStore) -> None:
    with pytest.raises(NotFound) as missing:
        await store.get("docs/none.md")
    assert missing.value.reason == "ARTIFACT_NOT_FOUND"
    await store.delete("docs/none.md")  # deleting nothing is fine


async def test_list_by_prefix_in_name_order_with_pages(store: ArtifactStore) -> None:
    names = ["docs/b/api/z.md", "docs/b/index.md", "docs/a/index.md", "graphs/a.json", "docs/b/api/a.md"]
    for name in names:
        await store.put(name, name.encode())
    page, more = await store.list("docs/b/", "", 2)
    assert [a.name for a in page] == ["docs/b/api/a.md", "docs/b/api/z.md"] and more
    page, more = await store.list("docs/b/", page[-1].name, 2)
    assert [a.name for a in page] == ["docs/b/index.md"] and not more
    everything, more = await store.list("", "", 100)
    assert [a.name for a in everything] == sorted(names) and not more
    assert {a.media_type for a in everything} == {"text/markdown", "application/json"}
    await store.delete("graphs/a.json")
    assert [a.name for a in (await store.list("graphs/", "", 10))[0]] == []


@pytest.mark.parametrize("bad", ["", "/abs", "a//b", "../up", "a/../b", ".hidden", "a/b/", "sp ace", "x" * 513])
async def test_bad_names_are_refused_with_the_field(store: ArtifactStore, bad: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        await store.put(bad, b"x")
    assert refused.value.violations[0].field == "name"
    with pytest.raises(InvalidArgument):
        await store.get(bad)


async def test_concurrent_writes_leave_one_whole_artifact(store: ArtifactStore) -> None:
    bodies = [bytes([65 + i]) * 50_000 for i in range(4)]
    await asyncio.gather(*(store.put("docs/big.md", body) for body in bodies))
    assert (await store.get("docs/big.md"))[1] in bodies


def test_urls_choose_the_adapter(tmp_path: Path) -> None:
    assert ArtifactsUrl.parse("", tmp_path) == ArtifactsUrl("file", folder=tmp_path / "artifacts")
    assert ArtifactsUrl.parse("file:///srv/artifacts") == ArtifactsUrl("file", folder=Path("/srv/artifacts"))
    assert ArtifactsUrl.parse("s3://my-bucket/a/b?region=eu-west-1") == ArtifactsUrl("s3", bucket="my-bucket", prefix="a/b/", region="eu-west-1")
    assert isinstance(open_artifact_store("", tmp_path), LocalArtifactStore)
    for bad in ("ftp://x/y", "s3://A_B", "file://relative"):
        with pytest.raises(ValueError):
            ArtifactsUrl.parse(bad)
    with pytest.raises(SystemExit, match="MCPMESH_ARTIFACTS_URL"):
        open_artifact_store("gs://bucket", tmp_path)


async def test_s3_ping_reports_a_missing_bucket(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    store = S3ArtifactStore("no-such-bucket-here", endpoint=moto_endpoint, region="us-east-1")
    with pytest.raises(Unavailable):
        await store.ping()
