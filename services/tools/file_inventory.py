"""Inventory of files under a directory: language, line and byte counts."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from services.runtime.file_walk import HardLinkError, count_lines, read_file_capped, stat_no_follow, walk_files

BINARY_SNIFF_BYTES = 8192
OTHER_LANGUAGE = "Other"

# Read-only proxies keep the lookup tables immutable at module level.
_LANGUAGE_BY_EXTENSION: Mapping[str, str] = MappingProxyType(
    {
        ".py": "Python",
        ".pyi": "Python",
        ".pyw": "Python",
        ".js": "JavaScript",
        ".mjs": "JavaScript",
        ".cjs": "JavaScript",
        ".jsx": "JavaScript",
        ".ts": "TypeScript",
        ".tsx": "TypeScript",
        ".mts": "TypeScript",
        ".cts": "TypeScript",
        ".go": "Go",
        ".rs": "Rust",
        ".java": "Java",
        ".c": "C",
        ".h": "C",
        ".cc": "C++",
        ".cpp": "C++",
        ".cxx": "C++",
        ".c++": "C++",
        ".hh": "C++",
        ".hpp": "C++",
        ".hxx": "C++",
        ".cs": "C#",
        ".rb": "Ruby",
        ".php": "PHP",
        ".sh": "Shell",
        ".bash": "Shell",
        ".zsh": "Shell",
        ".sql": "SQL",
        ".html": "HTML",
        ".htm": "HTML",
        ".css": "CSS",
        ".md": "Markdown",
        ".markdown": "Markdown",
        ".yaml": "YAML",
        ".yml": "YAML",
        ".json": "JSON",
        ".toml": "TOML",
        ".proto": "Protocol Buffers",
        ".dockerfile": "Dockerfile",
        ".mk": "Makefile",
        ".txt": "Text",
    }
)

_LANGUAGE_BY_NAME: Mapping[str, str] = MappingProxyType(
    {
        "dockerfile": "Dockerfile",
        "containerfile": "Dockerfile",
        "makefile": "Makefile",
        "gnumakefile": "Makefile",
        "gemfile": "Ruby",
        "rakefile": "Ruby",
    }
)


@dataclass(frozen=True)
class FileEntry:
    """One file, with its path relative to the inventory root in posix form."""

    path: str
    language: str
    lines: int
    bytes: int


@dataclass(frozen=True)
class LanguageCount:
    """Per-language totals."""

    language: str
    files: int
    lines: int


@dataclass(frozen=True)
class Inventory:
    """Result of inventorying a directory tree."""

    files: tuple[FileEntry, ...]
    languages: tuple[LanguageCount, ...]
    total_files: int
    total_lines: int
    total_bytes: int
    truncated: bool


def detect_language(name: str) -> str:
    """Return the language for a file name, or "Other" when unknown."""
    lowered = name.lower()
    by_name = _LANGUAGE_BY_NAME.get(lowered)
    if by_name is not None:
        return by_name
    # "Dockerfile.dev" style variants are still Dockerfiles.
    if lowered.startswith("dockerfile."):
        return "Dockerfile"
    return _LANGUAGE_BY_EXTENSION.get(os.path.splitext(lowered)[1], OTHER_LANGUAGE)


def _measure(path: Path, max_file_bytes: int) -> tuple[int, int] | None:
    """Return (bytes, lines) for a file, or None if it vanished."""
    try:
        size, data = read_file_capped(path, max_file_bytes)
    except HardLinkError:
        return None  # became a hard link after the walk: skipped like the walk skips them
    except OSError:
        # Unreadable files are still listed, sized from metadata alone (reached without following symlinks).
        try:
            return stat_no_follow(path).st_size, 0
        except OSError:
            return None
    if data is None or b"\0" in data[:BINARY_SNIFF_BYTES]:
        return size, 0
    return size, count_lines(data)


def inventory(root: Path, *, max_files: int = 20000, max_file_bytes: int = 2_000_000) -> Inventory:
    """Catalogue files under root (symlinks and vendored/build directories are skipped)."""
    paths, truncated = walk_files(root, max_files=max_files)
    entries: list[FileEntry] = []
    per_language: dict[str, list[int]] = {}
    for path in paths:
        measured = _measure(path, max_file_bytes)
        if measured is None:
            continue
        size, lines = measured
        language = detect_language(path.name)
        entries.append(FileEntry(path=path.relative_to(root).as_posix(), language=language, lines=lines, bytes=size))
        counts = per_language.setdefault(language, [0, 0])
        counts[0] += 1
        counts[1] += lines
    languages = sorted(
        (LanguageCount(language=name, files=files, lines=lines) for name, (files, lines) in per_language.items()),
        key=lambda item: (-item.files, item.language),
    )
    return Inventory(
        files=tuple(entries),
        languages=tuple(languages),
        total_files=len(entries),
        total_lines=sum(entry.lines for entry in entries),
        total_bytes=sum(entry.bytes for entry in entries),
        truncated=truncated,
    )
