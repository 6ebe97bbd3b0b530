"""The built-in file tools: what they return, and more than twenty attempts to leave the workspace."""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from services.runtime.arguments import check_arguments
from services.runtime.errors import DomainError, FailedPrecondition, InvalidArgument
from services.tools.file_tools import (
    FILE_SIZE_LIMIT,
    FILE_STATS_SCHEMA,
    LIST_FILES_SCHEMA,
    READ_FILE_SCHEMA,
    SEARCH_FILES_SCHEMA,
    FileTools,
)

SCHEMAS = {
    "list_files": LIST_FILES_SCHEMA,
    "read_file": READ_FILE_SCHEMA,
    "search_files": SEARCH_FILES_SCHEMA,
    "file_stats": FILE_STATS_SCHEMA,
}


class Workspace:
    def __init__(self, base: Path) -> None:
        self.root = base / "root"
        self.outside = base / "outside"
        self.evil = base / "root-evil"  # sibling whose name starts with the root's
        for folder in (self.root / "src" / "pkg", self.outside, self.evil):
            folder.mkdir(parents=True)
        (self.root / "src" / "main.py").write_text("import os\n\ndef main():\n    print('hello')\n")
        (self.root / "src" / "pkg" / "util.py").write_text("TOKEN = 'abc'\n" * 3)
        (self.root / "README.md").write_text("# Title\nhello world\n")
        (self.outside / "secret.txt").write_text("password=hunter2\n")
        (self.evil / "secret.txt").write_text("password=hunter2\n")
        self.tools = FileTools([self.root], max_files=1000)

    def call(self, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        check_arguments(SCHEMAS[tool], arguments, "arguments")
        function: Callable[[dict[str, Any]], dict[str, Any]] = getattr(self.tools, tool)
        return function(arguments)


@pytest.fixture()
def ws(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path)


def test_list_files_with_glob_and_paging(ws: Workspace) -> None:
    first = ws.call("list_files", {"path": str(ws.root), "page_size": 2})
    assert [f["path"] for f in first["files"]] == ["README.md", "src/main.py"]
    assert first["total_files"] == 3 and first["next_page_token"] == "2"
    second = ws.call("list_files", {"path": str(ws.root), "page_size": 2, "page_token": first["next_page_token"]})
    assert [f["path"] for f in second["files"]] == ["src/pkg/util.py"] and second["next_page_token"] == ""
    python = ws.call("list_files", {"path": "src", "glob": "*.py"})
    assert [f["path"] for f in python["files"]] == ["main.py", "pkg/util.py"]
    nested = ws.call("list_files", {"path": str(ws.root), "glob": "src/pkg/*"})
    assert [f["path"] for f in nested["files"]] == ["src/pkg/util.py"]


def test_read_file_whole_and_by_lines_and_capped(ws: Workspace) -> None:
    whole = ws.call("read_file", {"path": "src/main.py"})
    assert whole["content"].startswith("import os\n") and whole["total_lines"] == 4 and not whole["truncated"]
    part = ws.call("read_file", {"path": str(ws.root / "src" / "main.py"), "start_line": 3, "end_line": 4})
    assert part["content"] == "def main():\n    print('hello')\n"
    assert (part["start_line"], part["end_line"]) == (3, 4)
    capped = ws.call("read_file", {"path": "src/pkg/util.py", "max_bytes": 20})
    assert capped["content"] == "TOKEN = 'abc'\n" and capped["truncated"]
    with pytest.raises(InvalidArgument) as bad:
        ws.call("read_file", {"path": "src/main.py", "start_line": 3, "end_line": 2})
    assert bad.value.violations[0].field == "arguments.end_line"


def test_search_files_with_limits(ws: Workspace) -> None:
    found = ws.call("search_files", {"path": str(ws.root), "pattern": r"TOKEN|hello"})
    assert [(m["path"], m["line"]) for m in found["matches"]] == [
        ("README.md", 2), ("src/main.py", 4), ("src/pkg/util.py", 1), ("src/pkg/util.py", 2), ("src/pkg/util.py", 3)
    ]
    limited = ws.call("search_files", {"path": str(ws.root), "pattern": "TOKEN", "max_results": 2})
    assert len(limited["matches"]) == 2 and limited["truncated"]
    only_md = ws.call("search_files", {"path": str(ws.root), "pattern": "hello", "glob": "*.md", "ignore_case": True})
    assert [m["path"] for m in only_md["matches"]] == ["README.md"]
    with pytest.raises(InvalidArgument) as bad:
        ws.call("search_files", {"path": str(ws.root), "pattern": "(unclosed"})
    assert bad.value.violations[0].field == "arguments.pattern"


def test_catastrophic_regex_is_stopped_by_the_time_limit(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    (ws.root / "slow.txt").write_text("a" * 60 + "!\n")
    monkeypatch.setattr("services.tools.file_tools.SEARCH_TIME_LIMIT", 0.5)
    started = time.monotonic()
    result = ws.call("search_files", {"path": str(ws.root), "pattern": r"^(a|aa)+$"})
    assert result["timed_out"] and result["truncated"]
    # Without the timeout this search would not end (2^60 paths); regex checks its clock every so many steps,
    # so on a loaded machine it stops a few seconds late, but it stops.
    assert time.monotonic() - started < 20


def test_file_stats_of_file_and_folder(ws: Workspace) -> None:
    file = ws.call("file_stats", {"path": "src/main.py"})
    assert (file["kind"], file["lines"], file["binary"]) == ("file", 4, False)
    folder = ws.call("file_stats", {"path": str(ws.root)})
    assert (folder["kind"], folder["files"], folder["folders"]) == ("folder", 3, 2)
    assert folder["extensions"] == {".py": 2, ".md": 1}
    assert folder["largest"][0]["path"] == "src/pkg/util.py"


# --- containment: each attempt is refused with a clear error naming the field, and nothing hangs --------------


def _attempts(ws: Workspace) -> list[tuple[str, str, dict[str, Any]]]:
    root, outside = ws.root, ws.outside
    (root / "link-out").symlink_to(outside, target_is_directory=True)
    (root / "file-link-out").symlink_to(outside / "secret.txt")
    (root / "passwd").symlink_to("/etc/passwd")
    (root / "loop-a").symlink_to(root / "loop-b")
    (root / "loop-b").symlink_to(root / "loop-a")
    (root / "self-loop").symlink_to(root / "self-loop")
    (root / "dev-link").symlink_to("/dev/zero")
    os.mkfifo(root / "fifo")
    os.mknod(root / "null-device", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    os.link(outside / "secret.txt", root / "hard-link")
    with open(root / "huge.log", "wb") as handle:
        handle.truncate(FILE_SIZE_LIMIT + 1)
    read = "read_file"
    return [
        ("dot-dot", read, {"path": str(root / ".." / "outside" / "secret.txt")}),
        ("relative-dot-dot", read, {"path": "../outside/secret.txt"}),
        ("deep-dot-dot", read, {"path": "src/pkg/../../../outside/secret.txt"}),
        ("absolute-outside", read, {"path": str(outside / "secret.txt")}),
        ("etc-passwd", read, {"path": "/etc/passwd"}),
        ("symlinked-file-out", read, {"path": str(root / "file-link-out")}),
        ("symlink-to-etc", read, {"path": "passwd"}),
        ("through-symlinked-folder", read, {"path": str(root / "link-out" / "secret.txt")}),
        ("symlinked-folder-listed", "list_files", {"path": str(root / "link-out")}),
        ("symlinked-folder-searched", "search_files", {"path": "link-out", "pattern": "password"}),
        ("sibling-prefix", read, {"path": str(ws.evil / "secret.txt")}),
        ("sibling-prefix-listed", "list_files", {"path": str(ws.evil)}),
        ("fifo", read, {"path": "fifo"}),
        ("fifo-stats", "file_stats", {"path": "fifo"}),
        ("device-file", read, {"path": "null-device"}),
        ("device-symlink", read, {"path": "dev-link"}),
        ("symlink-loop", read, {"path": "loop-a"}),
        ("self-loop", "list_files", {"path": "self-loop"}),
        ("over-large-file", read, {"path": "huge.log"}),
        ("hard-link-to-outside", read, {"path": "hard-link"}),
        ("nul-byte", read, {"path": "src/main.py\u0000.txt"}),
        ("long-name", read, {"path": "x" * 300}),
        ("proc-root", "list_files", {"path": "/proc/1/root"}),
        ("proc-self-fd", read, {"path": "/proc/self/fd/0"}),
        ("proc-self-root", read, {"path": "/proc/self/root/etc/passwd"}),
        ("root-of-filesystem", "list_files", {"path": "/"}),
        ("empty-path", read, {"path": ""}),
        ("folder-as-file", read, {"path": "src"}),
        ("file-as-folder", "list_files", {"path": "src/main.py"}),
        ("missing", read, {"path": "nope.txt"}),
    ]


OUTSIDE, NOT_FOUND, INVALID = "PATH_OUTSIDE_WORKSPACE", "PATH_NOT_FOUND", "PATH_INVALID"
EXPECTED = {
    "fifo": "PATH_NOT_A_FILE",
    "fifo-stats": "PATH_NOT_READABLE",
    "device-file": "PATH_NOT_A_FILE",
    "symlink-loop": NOT_FOUND,
    "self-loop": NOT_FOUND,
    "over-large-file": "FILE_TOO_LARGE",
    "hard-link-to-outside": "PATH_NOT_READABLE",
    "nul-byte": INVALID,
    "long-name": INVALID,
    "proc-root": f"{OUTSIDE} {NOT_FOUND}",  # /proc/1 may not be ours to read
    "proc-self-fd": f"{OUTSIDE} {NOT_FOUND}",
    "empty-path": "INVALID_ARGUMENT",
    "folder-as-file": "PATH_NOT_A_FILE",
    "file-as-folder": "PATH_NOT_A_DIRECTORY",
    "missing": NOT_FOUND,
}


def test_containment_attempts_are_refused(ws: Workspace) -> None:
    attempts = _attempts(ws)
    assert len(attempts) >= 20
    for name, tool, arguments in attempts:
        with pytest.raises(DomainError) as refused:
            ws.call(tool, arguments)
        error = refused.value
        assert isinstance(error, InvalidArgument | FailedPrecondition), name
        assert error.reason in EXPECTED.get(name, OUTSIDE).split(), (name, error.reason)
        assert "hunter2" not in error.message and str(ws.outside) not in error.message, name
        assert "/etc" not in error.message or "/etc" in arguments["path"], name
        if isinstance(error, InvalidArgument):
            assert error.violations[0].field == "arguments.path", name


def test_walks_never_reach_outside(ws: Workspace) -> None:
    _attempts(ws)
    listed = ws.call("list_files", {"path": str(ws.root), "page_size": 1000})
    names = {f["path"] for f in listed["files"]}
    assert names == {"README.md", "huge.log", "src/main.py", "src/pkg/util.py"}
    searched = ws.call("search_files", {"path": str(ws.root), "pattern": "hunter2"})
    assert searched["matches"] == []
    stats = ws.call("file_stats", {"path": str(ws.root)})
    assert stats["files"] == 4
