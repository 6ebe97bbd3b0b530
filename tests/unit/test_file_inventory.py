"""Tests for the file inventory tool and the underlying file walker."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import pytest

from services.runtime.file_walk import SKIPPED_DIRS, HardLinkError, read_file_capped, walk_files
from services.tools.file_inventory import FileEntry, LanguageCount, detect_language, inventory


def _write(root: Path, relative: str, data: bytes) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


@pytest.mark.parametrize(
    ("name", "language"),
    [
        ("main.py", "Python"),
        ("app.tsx", "TypeScript"),
        ("index.mjs", "JavaScript"),
        ("lib.rs", "Rust"),
        ("x.hpp", "C++"),
        ("x.h", "C"),
        ("Prog.CS", "C#"),
        ("api.proto", "Protocol Buffers"),
        ("Dockerfile", "Dockerfile"),
        ("Dockerfile.dev", "Dockerfile"),
        ("Makefile", "Makefile"),
        ("rules.mk", "Makefile"),
        ("README.md", "Markdown"),
        ("ci.yml", "YAML"),
        ("pyproject.toml", "TOML"),
        ("notes.txt", "Text"),
        ("run.sh", "Shell"),
        ("image.png", "Other"),
        ("LICENSE", "Other"),
    ],
)
def test_detect_language(name: str, language: str) -> None:
    assert detect_language(name) == language


def test_inventory_counts_and_language_order(tmp_path: Path) -> None:
    _write(tmp_path, "src/a.py", b"import os\nprint(os)\n")
    _write(tmp_path, "src/b.py", b"x = 1")  # no trailing newline still counts as a line
    _write(tmp_path, "web/app.js", b"a\nb\nc\n")
    _write(tmp_path, "Makefile", b"all:\n\techo hi\n")
    _write(tmp_path, "logo.png", b"\x89PNG\r\n\x1a\n\x00\x00\nmore\n")
    result = inventory(tmp_path)
    by_path = {entry.path: entry for entry in result.files}
    assert by_path["src/a.py"] == FileEntry(path="src/a.py", language="Python", lines=2, bytes=20)
    assert by_path["src/b.py"].lines == 1
    assert by_path["web/app.js"] == FileEntry(path="web/app.js", language="JavaScript", lines=3, bytes=6)
    assert by_path["logo.png"].lines == 0  # binary: NUL byte in the sniffed prefix
    assert by_path["logo.png"].bytes == 16
    assert result.languages == (
        LanguageCount(language="Python", files=2, lines=3),
        LanguageCount(language="JavaScript", files=1, lines=3),
        LanguageCount(language="Makefile", files=1, lines=2),
        LanguageCount(language="Other", files=1, lines=0),
    )
    assert result.total_files == 5
    assert result.total_lines == 8
    assert result.total_bytes == sum(entry.bytes for entry in result.files)
    assert result.truncated is False


def test_large_files_have_size_but_no_lines(tmp_path: Path) -> None:
    _write(tmp_path, "big.txt", b"line\n" * 100)
    _write(tmp_path, "small.txt", b"line\n")
    result = inventory(tmp_path, max_file_bytes=50)
    by_path = {entry.path: entry for entry in result.files}
    assert (by_path["big.txt"].bytes, by_path["big.txt"].lines) == (500, 0)
    assert (by_path["small.txt"].bytes, by_path["small.txt"].lines) == (5, 1)


def test_skipped_dirs_but_not_generated(tmp_path: Path) -> None:
    for name in ("node_modules", ".git", "__pycache__", "dist", ".mcpmesh"):
        _write(tmp_path, f"{name}/x.js", b"x\n")
    _write(tmp_path, "generated/api_pb2.py", b"x = 1\n")
    _write(tmp_path, "sub/build/out.txt", b"x\n")
    result = inventory(tmp_path)
    assert [entry.path for entry in result.files] == ["generated/api_pb2.py"]
    assert "generated" not in SKIPPED_DIRS
    assert {"node_modules", ".git", "build"} <= SKIPPED_DIRS


def test_symlinks_are_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    root = tmp_path / "root"
    _write(outside, "secret.txt", b"top secret\n")
    _write(root, "real.txt", b"hello\n")
    (root / "file_link.txt").symlink_to(outside / "secret.txt")
    (root / "dir_link").symlink_to(outside, target_is_directory=True)
    files, truncated = walk_files(root, max_files=100)
    assert files == [root / "real.txt"]
    assert truncated is False
    assert [entry.path for entry in inventory(root).files] == ["real.txt"]


def test_walk_is_sorted_and_truncation_keeps_a_sorted_prefix(tmp_path: Path) -> None:
    for relative in ("b.txt", "a/z.txt", "a/b/c.txt", "a.txt", "c/d.txt"):
        _write(tmp_path, relative, b"x\n")
    full, truncated = walk_files(tmp_path, max_files=100)
    assert truncated is False
    assert full == sorted(full)
    assert len(full) == 5
    partial, truncated = walk_files(tmp_path, max_files=3)
    assert truncated is True
    assert partial == full[:3]
    exact, truncated = walk_files(tmp_path, max_files=5)
    assert (exact, truncated) == (full, False)


def test_inventory_truncation(tmp_path: Path) -> None:
    for index in range(5):
        _write(tmp_path, f"f{index}.txt", b"x\n")
    result = inventory(tmp_path, max_files=2)
    assert result.truncated is True
    assert [entry.path for entry in result.files] == ["f0.txt", "f1.txt"]
    assert result.total_files == 2


def test_walk_rejects_non_directory(tmp_path: Path) -> None:
    _write(tmp_path, "file.txt", b"x\n")
    with pytest.raises(NotADirectoryError):
        walk_files(tmp_path / "file.txt", max_files=10)
    with pytest.raises(FileNotFoundError):
        walk_files(tmp_path / "missing", max_files=10)
    with pytest.raises(ValueError):
        walk_files(tmp_path, max_files=-1)


def test_hard_linked_files_are_skipped_unless_allowed(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_text("secret\n")
    os.link(outside / "secret.txt", root / "linked.txt")
    (root / "own.txt").write_text("mine\n")
    files, _ = walk_files(root, max_files=10)
    assert [p.name for p in files] == ["own.txt"]
    allowed, _ = walk_files(root, max_files=10, allow_hard_links=True)
    assert [p.name for p in allowed] == ["linked.txt", "own.txt"]
    with pytest.raises(HardLinkError):
        read_file_capped(root / "linked.txt", 100)
    assert read_file_capped(root / "linked.txt", 100, allow_hard_links=True) == (7, b"secret\n")
    assert [e.path for e in inventory(root).files] == ["own.txt"]


def test_read_refuses_a_symlink_in_any_component(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_text("secret\n")
    (root / "sub").symlink_to(outside, target_is_directory=True)
    with pytest.raises(OSError):
        read_file_capped(root / "sub" / "secret.txt", 100)


def test_fifo_is_not_read_and_does_not_hang(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(OSError, match="not a regular file"):
        read_file_capped(tmp_path / "pipe", 100)
    assert walk_files(tmp_path, max_files=10) == ([], False)


def test_a_folder_swapped_for_an_outside_symlink_during_walks_never_leaks(tmp_path: Path) -> None:
    """A thread keeps replacing root/sub with a symlink to an outside folder while the inventory walks."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    for index in range(30):
        _write(root, f"sub/deep/file_{index:02}.py", b"x = 1\n")
        # Same names outside, with three lines: a read through the swapped path would count 3.
        _write(outside, f"deep/file_{index:02}.py", b"password = 'hunter2'\n" * 3)
        _write(outside, f"deep/SECRET_{index:02}.py", b"password = 'hunter2'\n" * 3)
    sub, parked = root / "sub", root / "parked"
    stop = threading.Event()
    swaps = 0

    def swap() -> None:
        nonlocal swaps
        deadline = time.monotonic() + 10
        while not stop.is_set() and time.monotonic() < deadline:
            sub.rename(parked)
            sub.symlink_to(outside, target_is_directory=True)
            time.sleep(0.0002)
            sub.unlink()
            parked.rename(sub)
            swaps += 1

    swapper = threading.Thread(target=swap, daemon=True)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # interleave the two threads often, as two processes would
    swapper.start()
    seen: set[str] = set()
    line_counts: set[int] = set()
    sizes: set[int] = set()
    deadline = time.monotonic() + 4
    try:
        for _ in range(1500):
            if time.monotonic() > deadline:
                break
            result = inventory(root)
            seen.update(entry.path for entry in result.files)
            line_counts.update(entry.lines for entry in result.files)
            sizes.update(entry.bytes for entry in result.files)
    finally:
        stop.set()
        swapper.join(timeout=5)
        sys.setswitchinterval(interval)
    assert swaps > 10, "the swapping thread did not run"
    assert not [name for name in seen if "SECRET" in name]
    assert all(name.startswith(("sub/", "parked/")) for name in seen)
    # Every file read had one line and 6 bytes (0 lines: refused mid-swap, listed unread); an outside file
    # (three lines, 63 bytes) was never read or measured through a swapped path.
    assert line_counts <= {0, 1} and sizes == {6}
