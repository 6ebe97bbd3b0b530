"""The artifact store port: documents agents make (docs sites, reports), by name, in a local folder or S3."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, urlsplit

from services.runtime.errors import InvalidArgument

MAX_NAME = 512
_SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*$")
MEDIA_TYPES = {
    ".md": "text/markdown",
    ".json": "application/json",
    ".sarif": "application/sarif+json",
    ".graphml": "application/graphml+xml",
    ".yml": "application/yaml",
    ".yaml": "application/yaml",
    ".html": "text/html",
    ".txt": "text/plain",
    ".mmd": "text/vnd.mermaid",
}


@dataclass(frozen=True)
class ArtifactInfo:
    """A stored artifact; `name` is a slash-separated path such as `docs/shop-1a2b3c4d/api/shop.models.md`."""

    name: str
    media_type: str
    size: int
    updated: str  # ISO 8601, UTC


def media_type_of(name: str) -> str:
    """The media type of an artifact follows from its name, so every adapter reports the same one."""
    return MEDIA_TYPES.get(Path(name).suffix.lower(), "application/octet-stream")


def check_name(name: str, field: str = "name") -> str:
    """A valid artifact name or InvalidArgument naming `field`: segments of letters, digits, '.', '_', '-'."""
    if not name:
        raise InvalidArgument.field(field, "is required")
    if len(name) > MAX_NAME:
        raise InvalidArgument.field(field, f"is longer than {MAX_NAME} characters")
    if not all(_SEGMENT.match(segment) for segment in name.split("/")):
        raise InvalidArgument.field(
            field, "must be '/'-separated segments of letters, digits, '.', '_' and '-', none empty or starting with '.'"
        )
    return name


def check_prefix(prefix: str, field: str = "prefix") -> str:
    """A listing prefix: empty, or a name that may end with '/'."""
    if prefix:
        check_name(prefix.rstrip("/") or "/", field)
    return prefix


class ArtifactStore(Protocol):
    async def put(self, name: str, content: bytes) -> ArtifactInfo:
        """Stores `content` under `name`, replacing what was there; readers never see half of it."""
        ...

    async def get(self, name: str) -> tuple[ArtifactInfo, bytes]:
        """The artifact and its bytes; NotFound (ARTIFACT_NOT_FOUND) when there is none."""
        ...

    async def list(self, prefix: str, after: str, limit: int) -> tuple[list[ArtifactInfo], bool]:
        """Artifacts whose names start with `prefix` and sort after `after`, by name, at most `limit`; and whether
        there are more."""
        ...

    async def delete(self, name: str) -> None:
        """Removes an artifact; nothing happens when it does not exist."""
        ...

    async def ping(self) -> None:
        """Raises when the store cannot be reached."""
        ...


@dataclass(frozen=True)
class ArtifactsUrl:
    """Where artifacts live: `file:///abs/folder` (or empty: the data folder's `artifacts/`) or `s3://bucket/prefix`."""

    scheme: str
    folder: Path | None = None
    bucket: str = ""
    prefix: str = ""
    endpoint: str = ""
    region: str = ""

    @classmethod
    def parse(cls, raw: str, data_dir: Path = Path(".mcpmesh")) -> ArtifactsUrl:
        if not raw:
            return cls("file", folder=data_dir / "artifacts")
        parts = urlsplit(raw)
        if parts.scheme == "file":
            if parts.netloc or not parts.path.startswith("/"):
                raise ValueError("expected file:///ABSOLUTE/FOLDER")
            return cls("file", folder=Path(parts.path))
        if parts.scheme == "s3":
            if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", parts.netloc):
                raise ValueError("expected s3://BUCKET/PREFIX with a valid bucket name")
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            prefix = parts.path.strip("/")
            return cls("s3", bucket=parts.netloc, prefix=f"{prefix}/" if prefix else "",
                       endpoint=query.get("endpoint", ""), region=query.get("region", ""))
        raise ValueError(f"unknown artifact store scheme {parts.scheme!r}; expected file or s3")


def open_artifact_store(raw: str, data_dir: Path) -> ArtifactStore:
    """The adapter `MCPMESH_ARTIFACTS_URL` names: empty or `file:///FOLDER` a local folder (`artifacts_local.py`),
    `s3://BUCKET/PREFIX?endpoint=URL&region=R` S3 (`artifacts_s3.py`); a bad URL is a clear SystemExit at start-up."""
    try:
        url = ArtifactsUrl.parse(raw, data_dir)
    except ValueError as exc:
        raise SystemExit(f"MCPMESH_ARTIFACTS_URL={raw!r} is not valid: {exc}") from exc
    if url.scheme == "s3":
        from services.runtime.artifacts_s3 import S3ArtifactStore

        return S3ArtifactStore(url.bucket, url.prefix, endpoint=url.endpoint, region=url.region)
    from services.runtime.artifacts_local import LocalArtifactStore

    assert url.folder is not None
    return LocalArtifactStore(url.folder)
