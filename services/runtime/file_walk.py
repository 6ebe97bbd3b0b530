"""Deterministic file walking and reading that never follows a symlink, bounded by a file count.

What is checked is what is read: the walk holds a descriptor of each directory it lists and opens the next
level through it (`O_NOFOLLOW | O_DIRECTORY`, `dir_fd=`), and a read opens every component of its path the
same way. A folder swapped for a symlink during a walk is skipped, not followed out of the root.

Hard links: a regular file whose link count is above 1 may be a second name of a file outside the root, and
nothing in the file says which name is "inside". Such files are skipped by the walk and refused by reads unless
the caller passes `allow_hard_links=True`.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress
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
        ".hypothesis",
        ".tools",  # mcpmesh's own installs of test tools (virtual environments, npm packages)
        "dist",
        "build",
    }
)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
# O_NONBLOCK: opening a FIFO must not wait for a writer; the fstat check below then refuses it.
_FILE_FLAGS = os.O_RDONLY | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)


class HardLinkError(OSError):
    """A file has more than one name (link count above 1) and hard links were not allowed."""


def open_directory(path: Path) -> int:
    """A descriptor of the directory at `path`, refusing a symlink in any component."""
    parts = Path(os.path.abspath(path)).parts
    fd = os.open(parts[0], _DIRECTORY_FLAGS)
    try:
        for part in parts[1:]:
            child = os.open(part, _DIRECTORY_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextmanager
def opened_directory(path: Path) -> Iterator[int]:
    fd = open_directory(path)
    try:
        yield fd
    finally:
        os.close(fd)


def open_file(path: Path, *, allow_hard_links: bool = False) -> tuple[int, os.stat_result]:
    """A descriptor of the regular file at `path` and its stat, refusing symlinks in any component,
    anything that is not a regular file, and (unless allowed) hard-linked files."""
    absolute = Path(os.path.abspath(path))
    with opened_directory(absolute.parent) as parent:
        fd = os.open(absolute.name, _FILE_FLAGS, dir_fd=parent)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(f"not a regular file: {absolute.name}")
        if info.st_nlink > 1 and not allow_hard_links:
            raise HardLinkError(f"file has {info.st_nlink} hard links: {absolute.name}")
    except BaseException:
        os.close(fd)
        raise
    return fd, info


def stat_no_follow(path: Path) -> os.stat_result:
    """lstat of `path` reached without following a symlink in any parent component."""
    absolute = Path(os.path.abspath(path))
    with opened_directory(absolute.parent) as parent:
        return os.stat(absolute.name, dir_fd=parent, follow_symlinks=False)


def _sorted_names(fd: int) -> list[tuple[str, bool]]:
    """(name, is_directory) of a directory's entries that are real directories or regular files, sorted."""
    entries: list[tuple[str, bool]] = []
    try:
        with os.scandir(fd) as it:
            for entry in it:
                # follow_symlinks=False: a symlink is neither a directory nor a file here, so it is skipped.
                if entry.is_dir(follow_symlinks=False):
                    entries.append((entry.name, True))
                elif entry.is_file(follow_symlinks=False):
                    entries.append((entry.name, False))
    except OSError:
        # Unreadable or vanished directories are skipped rather than aborting the walk.
        return []
    return sorted(entries)


def _require_directory(root: Path) -> None:
    # Fail loudly: an empty result for a mistyped root would look like an empty project.
    if not root.exists():
        raise FileNotFoundError(f"root does not exist: {root}")
    if not root.is_dir():
        raise NotADirectoryError(f"root is not a directory: {root}")


def walk_files(root: Path, *, max_files: int, allow_hard_links: bool = False) -> tuple[list[Path], bool]:
    """Return regular files under root in sorted order and whether the list was truncated."""
    if max_files < 0:
        raise ValueError("max_files must be >= 0")
    _require_directory(root)
    files: list[Path] = []
    # Each frame holds an open directory, its path and its remaining entries in reverse name order, so pop()
    # yields the next name; descending immediately keeps a truncated result a prefix of the full sort.
    root_fd = os.open(root, _DIRECTORY_FLAGS & ~_NOFOLLOW)  # the root itself was resolved by the caller
    stack: list[tuple[int, Path, list[tuple[str, bool]]]] = [(root_fd, root, _sorted_names(root_fd)[::-1])]
    try:
        while stack:
            fd, directory, pending = stack[-1]
            if not pending:
                os.close(fd)
                stack.pop()
                continue
            name, is_directory = pending.pop()
            if is_directory:
                if name in SKIPPED_DIRS:
                    continue
                try:
                    child = os.open(name, _DIRECTORY_FLAGS, dir_fd=fd)
                except OSError:
                    continue  # replaced by a symlink or a file since it was listed, or vanished
                stack.append((child, directory / name, _sorted_names(child)[::-1]))
                continue
            if not allow_hard_links and _link_count(name, fd) > 1:
                continue
            if len(files) >= max_files:
                return files, True
            files.append(directory / name)
        return files, False
    finally:
        for fd, _, _ in stack:
            with suppress(OSError):
                os.close(fd)


def _link_count(name: str, dir_fd: int) -> int:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_nlink
    except OSError:
        return 0


def read_file_capped(path: Path, max_bytes: int, *, allow_hard_links: bool = False) -> tuple[int, bytes | None]:
    """Return (size, content) of a regular file; content is None when it exceeds max_bytes.

    Raises OSError when the file cannot be opened, is not a regular file, has a symlink anywhere in its path
    or (unless allowed) more than one hard link.
    """
    fd, info = open_file(path, allow_hard_links=allow_hard_links)
    with os.fdopen(fd, "rb") as handle:
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
