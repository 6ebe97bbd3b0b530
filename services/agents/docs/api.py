"""Artifact RPCs on AgentService (list, download): proto in, artifact store call, proto out. Mixed into the servicer."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from typing import Any

import grpc
from mcpmesh.agents.v1 import agent_service_pb2, artifact_pb2

from services.runtime.artifacts import ArtifactInfo, ArtifactStore, check_name, check_prefix
from services.runtime.errors import FailedPrecondition, InvalidArgument
from services.runtime.protos import timestamp

MAX_DOWNLOAD_BYTES = 30 * 2**20  # below the servers' 32 MiB message limit, with room for the envelope


def artifact_message(info: ArtifactInfo) -> artifact_pb2.StoredArtifact:
    return artifact_pb2.StoredArtifact(name=info.name, media_type=info.media_type, size_bytes=info.size,
                                       update_time=timestamp(dt.datetime.fromisoformat(info.updated)))


def _after(token: str) -> str:
    """Page tokens are the last name of the previous page, base64 so they stay opaque."""
    if not token:
        return ""
    try:
        return check_name(base64.urlsafe_b64decode(token.encode()).decode(), "page_token")
    except (binascii.Error, UnicodeDecodeError, ValueError, InvalidArgument):
        raise InvalidArgument.field("page_token", "is not a token returned by this server") from None


class ArtifactApi:
    """The artifact RPCs; a servicer class lists this before AgentServicer and passes `artifacts=` to its constructor."""

    def __init__(self, *args: Any, artifacts: ArtifactStore, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._artifacts = artifacts

    async def ListArtifacts(
        self, request: agent_service_pb2.ListArtifactsRequest, context: grpc.aio.ServicerContext
    ) -> agent_service_pb2.ListArtifactsResponse:
        if request.page_size < 0:
            raise InvalidArgument.field("page_size", "must not be negative")
        size = min(request.page_size or 20, 100)
        found, more = await self._artifacts.list(check_prefix(request.prefix), _after(request.page_token), size)
        token = base64.urlsafe_b64encode(found[-1].name.encode()).decode() if more and found else ""
        return agent_service_pb2.ListArtifactsResponse(artifacts=[artifact_message(a) for a in found], next_page_token=token)

    async def DownloadArtifact(
        self, request: agent_service_pb2.DownloadArtifactRequest, context: grpc.aio.ServicerContext
    ) -> agent_service_pb2.DownloadArtifactResponse:
        info, content = await self._artifacts.get(check_name(request.name))
        if len(content) > MAX_DOWNLOAD_BYTES:
            raise FailedPrecondition(
                f"artifact {info.name!r} is {len(content) // 2**20} MiB, more than the {MAX_DOWNLOAD_BYTES // 2**20} MiB "
                "one response may carry", reason="ARTIFACT_TOO_LARGE", metadata={"artifact": info.name},
            )
        return agent_service_pb2.DownloadArtifactResponse(artifact=artifact_message(info), content=content)
