"""The artifact store in S3 (boto3): one object per artifact under a key prefix, listed with StartAfter."""

from __future__ import annotations

import asyncio
from typing import Any

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from services.runtime.artifacts import ArtifactInfo, check_name, check_prefix, media_type_of
from services.runtime.errors import NotFound, Unavailable


class S3ArtifactStore:
    """Blocking boto3 calls run in worker threads; the bucket must exist (CloudFormation makes it)."""

    def __init__(self, bucket: str, prefix: str = "", *, endpoint: str = "", region: str = "", client: Any = None) -> None:
        self._bucket = bucket
        self._prefix = prefix
        self._client = client or boto3.client(
            "s3",
            endpoint_url=endpoint or None,
            region_name=region or None,
            config=BotoConfig(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=30),
        )

    def _put(self, name: str, content: bytes) -> ArtifactInfo:
        key = self._prefix + check_name(name)
        self._client.put_object(Bucket=self._bucket, Key=key, Body=content, ContentType=media_type_of(name))
        head = self._client.head_object(Bucket=self._bucket, Key=key)
        return ArtifactInfo(name, media_type_of(name), int(head["ContentLength"]), head["LastModified"].isoformat())

    async def put(self, name: str, content: bytes) -> ArtifactInfo:
        return await asyncio.to_thread(self._put, name, content)

    def _get(self, name: str) -> tuple[ArtifactInfo, bytes]:
        try:
            answer = self._client.get_object(Bucket=self._bucket, Key=self._prefix + check_name(name))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise NotFound(f"artifact {name!r} does not exist", reason="ARTIFACT_NOT_FOUND", metadata={"artifact": name}) from None
            raise
        content = answer["Body"].read()
        return ArtifactInfo(name, media_type_of(name), len(content), answer["LastModified"].isoformat()), content

    async def get(self, name: str) -> tuple[ArtifactInfo, bytes]:
        return await asyncio.to_thread(self._get, name)

    def _list(self, prefix: str, after: str, limit: int) -> tuple[list[ArtifactInfo], bool]:
        check_prefix(prefix)
        request: dict[str, Any] = {"Bucket": self._bucket, "Prefix": self._prefix + prefix, "MaxKeys": limit + 1}
        if after:
            request["StartAfter"] = self._prefix + after
        answer = self._client.list_objects_v2(**request)
        found = [
            ArtifactInfo(o["Key"][len(self._prefix):], media_type_of(o["Key"]), int(o["Size"]), o["LastModified"].isoformat())
            for o in answer.get("Contents", [])
        ]
        return found[:limit], len(found) > limit

    async def list(self, prefix: str, after: str, limit: int) -> tuple[list[ArtifactInfo], bool]:
        return await asyncio.to_thread(self._list, prefix, after, limit)

    async def delete(self, name: str) -> None:
        key = self._prefix + check_name(name)
        await asyncio.to_thread(self._client.delete_object, Bucket=self._bucket, Key=key)

    async def ping(self) -> None:
        try:
            await asyncio.to_thread(self._client.head_bucket, Bucket=self._bucket)
        except ClientError as exc:
            raise Unavailable(f"S3 bucket {self._bucket!r} cannot be reached: {exc}", reason="ARTIFACT_STORE_UNAVAILABLE") from exc
