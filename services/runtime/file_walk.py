"""Deterministic, symlink-free file walking bounded by a file count."""

from __future__ import annotations

import os
import stat
from pathlib import Path

SKIPPED_DIRS: frozenset[str] = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".venv",
        "venv",
        "node_modules",
        "__pycache__",
        ".mcpmesh",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".tox",
        "dist",
        "build",
    }
)


def _sorted_entries(directory: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(directory) as it:
            return sorted(it, key=lambda entry: entry.name)
    except OSError:
        # Unreadable or vanished directories are skipped rather than aborting the walk.
        return []


def _require_directory(root: Path) -> None:
    # Fail loudly: an empty result for a mistyped root would look like an empty project.
    if not root.exists():
        raise FileNotFoundError(f"root does not exist: {root}")
    if not root.is_dir():
        raise NotADirectoryError(f"root is not a directory: {root}")


def walk_files(root: Path, *, max_files: int) -> tuple[list[Path], bool]:
    """Return regular files under root in sorted order and whether the list was truncated."""
    if max_files < 0:
        raise ValueError("max_files must be >= 0")
    _require_directory(root)
    files: list[Path] = []
    # Each frame is a directory's remaining entries in reverse name order, so pop() yields
    # the next name; descending immediately keeps a truncated result a prefix of the full sort.
    stack: list[list[os.DirEntry[str]]] = [_sorted_entries(root)[::-1]]
    while stack:
        pending = stack[-1]
        if not pending:
            stack.pop()
            continue
        entry = pending.pop()
        # Symlinks are never followed, so nothing outside the root can be reached.
        if entry.is_symlink():
            continue
        if entry.is_dir(follow_symlinks=False):
            if entry.name not in SKIPPED_DIRS:
                stack.append(_sorted_entries(Path(entry.path))[::-1])
        elif entry.is_file(follow_symlinks=False):
            if len(files) >= max_files:
                return files, True
            files.append(Path(entry.path))
    return files, False


def read_file_capped(path: Path, max_bytes: int) -> tuple[int, bytes | None]:
    """Return (size, content) of a regular file; content is None when it exceeds max_bytes.

    Raises OSError when the file cannot be opened or is not a regular file.
    """
    # O_NOFOLLOW closes the gap where a walked file is swapped for a symlink before reading.
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    fd = os.open(path, flags)
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise OSError(f"not a regular file: {path}")
        if info.st_size > max_bytes:
            return info.st_size, None
        data = handle.read(max_bytes + 1)
    # The file may have grown since fstat; the cap still applies to what was read.
    if len(data) > max_bytes:
        return len(data), None
    return len(data), data


def count_lines(data: bytes) -> int:
    """Count physical lines, including a final line that lacks a trailing newline."""
    lines = data.count(b"\n")
    if data and not data.endswith(b"\n"):
        lines += 1
    return lines
