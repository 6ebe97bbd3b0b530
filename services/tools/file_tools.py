"""Built-in file tools confined to the workspace roots: list, read, search and statistics.

Every path argument is resolved to its real path and checked against the roots (services.runtime.workspace);
every read then opens that real path without following a symlink in any component (services.runtime.file_walk),
so a path swapped after the check is refused instead of followed. Symlinks met during a walk are skipped,
hard-linked files are skipped (a second name of a file may live outside), FIFOs and devices are never opened."""

from __future__ import annotations

import fnmatch
import os
import stat
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import regex

from services.runtime.errors import FailedPrecondition, InvalidArgument
from services.runtime.file_walk import count_lines, open_file, read_file_capped, stat_no_follow, walk_files
from services.runtime.workspace import PATH_SCHEMA, resolve_in_roots

READ_LIMIT = 1_000_000  # most bytes read_file returns in one call
FILE_SIZE_LIMIT = 8_000_000  # larger files are refused by read_file and not searched
SEARCH_TIME_LIMIT = 5.0  # seconds for a whole search; each regex match also has its own timeout
SEARCH_RESULT_LIMIT = 500
BINARY_SNIFF_BYTES = 8192


def _path_property(description: str) -> dict[str, Any]:
    return {**PATH_SCHEMA, "description": description}


LIST_FILES_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "path": _path_property("Folder to list, inside a workspace root; relative paths start at the first root."),
        "glob": {"type": "string", "maxLength": 256, "description": "Shell pattern on the path relative to the folder, such as '*.py' or 'src/*'."},
        "page_size": {"type": "integer", "minimum": 0, "maximum": 1000, "description": "Files per page; 0 means 100."},
        "page_token": {"type": "string", "maxLength": 20, "pattern": "^[0-9]*$", "description": "next_page_token of the previous page."},
    },
    "required": ["path"],
    "additionalProperties": False,
}
READ_FILE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "path": _path_property("File to read, inside a workspace root."),
        "start_line": {"type": "integer", "minimum": 1, "description": "First line to return (1-based); default 1."},
        "end_line": {"type": "integer", "minimum": 1, "description": "Last line to return, inclusive; default the last."},
        "max_bytes": {"type": "integer", "minimum": 1, "maximum": READ_LIMIT, "description": f"Most bytes of content to return; default and limit {READ_LIMIT}."},
    },
    "required": ["path"],
    "additionalProperties": False,
}
SEARCH_FILES_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "path": _path_property("Folder to search, inside a workspace root."),
        "pattern": {"type": "string", "minLength": 1, "maxLength": 1000, "description": "Regular expression searched line by line."},
        "glob": {"type": "string", "maxLength": 256, "description": "Only files whose relative path matches this shell pattern."},
        "ignore_case": {"type": "boolean"},
        "max_results": {"type": "integer", "minimum": 1, "maximum": SEARCH_RESULT_LIMIT, "description": f"Most matching lines; default 100, limit {SEARCH_RESULT_LIMIT}."},
    },
    "required": ["path", "pattern"],
    "additionalProperties": False,
}
FILE_STATS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"path": _path_property("File or folder inside a workspace root.")},
    "required": ["path"],
    "additionalProperties": False,
}


def _relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _glob_matches(pattern: str, relative: str) -> bool:
    # A pattern without a slash matches the file name at any depth, as most tools do.
    return fnmatch.fnmatchcase(relative if "/" in pattern else relative.rsplit("/", 1)[-1], pattern)


class FileTools:
    """The four file tools, bound to the workspace roots and the walk limit."""

    def __init__(self, roots: Sequence[Path], max_files: int) -> None:
        self._roots = list(roots)
        self._max_files = max_files

    def _files(self, folder: Path, glob: str) -> tuple[list[Path], bool]:
        files, truncated = walk_files(folder, max_files=self._max_files)
        if glob:
            files = [path for path in files if _glob_matches(glob, _relative(path, folder))]
        return files, truncated

    def list_files(self, arguments: dict[str, Any]) -> dict[str, Any]:
        folder = resolve_in_roots(arguments.get("path"), self._roots, "arguments.path", kind="folder")
        size = int(arguments.get("page_size") or 100)
        offset = int(arguments.get("page_token") or 0)
        files, truncated = self._files(folder, str(arguments.get("glob") or ""))
        page = files[offset : offset + size]
        entries = []
        for path in page:
            try:
                entries.append({"path": _relative(path, folder), "bytes": stat_no_follow(path).st_size})
            except OSError:
                continue  # vanished since the walk
        more = offset + size < len(files)
        return {
            "root": str(folder),
            "files": entries,
            "total_files": len(files),
            "next_page_token": str(offset + size) if more else "",
            "truncated": truncated,
        }

    def read_file(self, arguments: dict[str, Any]) -> dict[str, Any]:
        path = resolve_in_roots(arguments.get("path"), self._roots, "arguments.path", kind="file")
        start = int(arguments.get("start_line") or 1)
        end = int(arguments["end_line"]) if arguments.get("end_line") else None
        if end is not None and end < start:
            raise InvalidArgument.field("arguments.end_line", "must not be before start_line")
        limit = int(arguments.get("max_bytes") or READ_LIMIT)
        size, data = _read(path, FILE_SIZE_LIMIT, "arguments.path")
        if data is None:
            raise FailedPrecondition(
                f"arguments.path: file is {size} bytes, over the {FILE_SIZE_LIMIT}-byte read limit",
                reason="FILE_TOO_LARGE",
            )
        if b"\0" in data[:BINARY_SNIFF_BYTES]:
            raise FailedPrecondition("arguments.path: file is binary", reason="FILE_IS_BINARY")
        lines = data.decode("utf-8", errors="replace").splitlines(keepends=True)
        chosen = lines[start - 1 : end]
        content, truncated = "", False
        for line in chosen:
            if len((content + line).encode()) > limit:
                truncated = True
                break
            content += line
        last = start - 1 + content.count("\n") + (1 if content and not content.endswith("\n") else 0)
        return {
            "path": str(path),
            "content": content,
            "start_line": start,
            "end_line": max(last, start - 1),
            "total_lines": len(lines),
            "bytes": size,
            "truncated": truncated,
        }

    def search_files(self, arguments: dict[str, Any]) -> dict[str, Any]:
        folder = resolve_in_roots(arguments.get("path"), self._roots, "arguments.path", kind="folder")
        flags = regex.IGNORECASE if arguments.get("ignore_case") else 0
        try:
            compiled = regex.compile(str(arguments["pattern"]), flags)
        except regex.error as error:
            raise InvalidArgument.field("arguments.pattern", f"is not a valid regular expression: {error}") from None
        limit = int(arguments.get("max_results") or 100)
        deadline = time.monotonic() + SEARCH_TIME_LIMIT
        files, truncated = self._files(folder, str(arguments.get("glob") or ""))
        matches: list[dict[str, Any]] = []
        searched = 0
        timed_out = False
        for path in files:
            if len(matches) >= limit or time.monotonic() > deadline:
                timed_out = time.monotonic() > deadline
                truncated = True
                break
            try:
                _, data = read_file_capped(path, FILE_SIZE_LIMIT)
            except OSError:
                continue
            if data is None or b"\0" in data[:BINARY_SNIFF_BYTES]:
                continue
            searched += 1
            for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), start=1):
                remaining = deadline - time.monotonic()
                try:
                    # regex's timeout stops a catastrophic pattern inside one line; the deadline bounds the rest.
                    found = compiled.search(line, timeout=max(remaining, 0.001))
                except TimeoutError:
                    timed_out = truncated = True
                    break
                if found:
                    matches.append({"path": _relative(path, folder), "line": number, "text": line[:500]})
                    if len(matches) >= limit:
                        truncated = True
                        break
            if timed_out:
                break
        return {
            "root": str(folder),
            "matches": matches,
            "files_searched": searched,
            "truncated": truncated,
            "timed_out": timed_out,
        }

    def file_stats(self, arguments: dict[str, Any]) -> dict[str, Any]:
        path = resolve_in_roots(arguments.get("path"), self._roots, "arguments.path")
        if path.is_dir():
            files, truncated = walk_files(path, max_files=self._max_files)
            sizes: list[tuple[int, str]] = []
            extensions: dict[str, int] = {}
            folders: set[str] = set()
            for file in files:
                try:
                    size = stat_no_follow(file).st_size
                except OSError:
                    continue
                relative = _relative(file, path)
                sizes.append((size, relative))
                extension = os.path.splitext(file.name)[1].lower() or "(none)"
                extensions[extension] = extensions.get(extension, 0) + 1
                folders.update(str(parent) for parent in Path(relative).parents if str(parent) != ".")
            sizes.sort(reverse=True)
            return {
                "path": str(path),
                "kind": "folder",
                "files": len(sizes),
                "folders": len(folders),
                "bytes": sum(size for size, _ in sizes),
                "largest": [{"path": name, "bytes": size} for size, name in sizes[:10]],
                "extensions": dict(sorted(extensions.items(), key=lambda item: (-item[1], item[0]))),
                "truncated": truncated,
            }
        fd, info = _open(path, "arguments.path")
        os.close(fd)
        size, data = _read(path, FILE_SIZE_LIMIT, "arguments.path")
        binary = data is not None and b"\0" in data[:BINARY_SNIFF_BYTES]
        return {
            "path": str(path),
            "kind": "file",
            "bytes": info.st_size,
            "lines": count_lines(data) if data is not None and not binary else 0,
            "binary": binary,
            "modified": int(info.st_mtime),
            "mode": stat.filemode(info.st_mode),
        }


def _open(path: Path, field: str) -> tuple[int, os.stat_result]:
    try:
        return open_file(path)
    except OSError as error:
        raise InvalidArgument.field(field, f"cannot be opened: {_why(error)}", reason="PATH_NOT_READABLE") from None


def _read(path: Path, limit: int, field: str) -> tuple[int, bytes | None]:
    try:
        return read_file_capped(path, limit)
    except OSError as error:
        raise InvalidArgument.field(field, f"cannot be read: {_why(error)}", reason="PATH_NOT_READABLE") from None


def _why(error: OSError) -> str:
    """The reason without the path: a message about a refused path never says where it points."""
    if error.errno is not None and error.strerror:
        return error.strerror.lower()
    return str(error).split(":", 1)[0]
