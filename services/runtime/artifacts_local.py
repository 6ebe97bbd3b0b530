"""The artifact store in a local folder: one file per artifact, written atomically, listed in name order."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import tempfile
from pathlib import Path

from services.runtime.artifacts import ArtifactInfo, check_name, check_prefix, media_type_of
from services.runtime.errors import NotFound


class LocalArtifactStore:
    def __init__(self, folder: Path) -> None:
        self._folder = folder

    def _info(self, name: str, path: Path) -> ArtifactInfo:
        stat = path.stat()
        updated = dt.datetime.fromtimestamp(stat.st_mtime, dt.UTC).isoformat()
        return ArtifactInfo(name, media_type_of(name), stat.st_size, updated)

    def _put(self, name: str, content: bytes) -> ArtifactInfo:
        path = self._folder / check_name(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        # A temporary file in the same folder, then a rename: a reader sees the old or the new artifact, never half.
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(content)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return self._info(name, path)

    async def put(self, name: str, content: bytes) -> ArtifactInfo:
        return await asyncio.to_thread(self._put, name, content)

    def _get(self, name: str) -> tuple[ArtifactInfo, bytes]:
        path = self._folder / check_name(name)
        try:
            content = path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NotFound(f"artifact {name!r} does not exist", reason="ARTIFACT_NOT_FOUND", metadata={"artifact": name}) from None
        return self._info(name, path), content

    async def get(self, name: str) -> tuple[ArtifactInfo, bytes]:
        return await asyncio.to_thread(self._get, name)

    def _names(self) -> list[str]:
        if not self._folder.is_dir():
            return []
        names = []
        for directory, folders, files in os.walk(self._folder):
            folders[:] = [f for f in folders if not f.startswith(".")]
            base = Path(directory).relative_to(self._folder)
            names += [(base / f).as_posix() for f in files if not f.startswith(".")]
        return sorted(n.removeprefix("./") for n in names)

    def _list(self, prefix: str, after: str, limit: int) -> tuple[list[ArtifactInfo], bool]:
        check_prefix(prefix)
        chosen = [n for n in self._names() if n.startswith(prefix) and n > after]
        return [self._info(n, self._folder / n) for n in chosen[:limit]], len(chosen) > limit

    async def list(self, prefix: str, after: str, limit: int) -> tuple[list[ArtifactInfo], bool]:
        return await asyncio.to_thread(self._list, prefix, after, limit)

    async def delete(self, name: str) -> None:
        path = self._folder / check_name(name)
        await asyncio.to_thread(path.unlink, missing_ok=True)

    async def ping(self) -> None:
        def check() -> None:
            self._folder.mkdir(parents=True, exist_ok=True)
            if not os.access(self._folder, os.W_OK):
                raise OSError(f"artifact folder {self._folder} is not writable")

        await asyncio.to_thread(check)
