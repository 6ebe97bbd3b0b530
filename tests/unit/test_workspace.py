"""Tests for confining paths to workspace roots."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.runtime.errors import InvalidArgument
from services.runtime.workspace import OutsideWorkspaceError, resolve_folder_argument, resolve_in_workspace


@pytest.fixture()
def layout(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "workspace"
    outside = tmp_path / "outside"
    (root / "project" / "src").mkdir(parents=True)
    outside.mkdir()
    return root, outside


def test_root_itself_and_subdirectories_are_allowed(layout: tuple[Path, Path]) -> None:
    root, _ = layout
    assert resolve_in_workspace(str(root), [root]) == root.resolve()
    assert resolve_in_workspace(str(root / "project" / "src"), [root]) == (root / "project" / "src").resolve()


def test_dot_dot_is_resolved_before_checking(layout: tuple[Path, Path]) -> None:
    root, _outside = layout
    with pytest.raises(OutsideWorkspaceError, match="outside the workspace roots"):
        resolve_in_workspace(str(root / "project" / ".." / ".." / "outside"), [root])


def test_path_outside_roots_raises(layout: tuple[Path, Path]) -> None:
    root, outside = layout
    with pytest.raises(OutsideWorkspaceError):
        resolve_in_workspace(str(outside), [root])
    assert issubclass(OutsideWorkspaceError, ValueError)


def test_sibling_with_common_prefix_is_outside(tmp_path: Path) -> None:
    root = tmp_path / "work"
    sibling = tmp_path / "workspace-other"
    root.mkdir()
    sibling.mkdir()
    with pytest.raises(OutsideWorkspaceError):
        resolve_in_workspace(str(sibling), [root])


def test_any_of_several_roots_matches(layout: tuple[Path, Path]) -> None:
    root, outside = layout
    assert resolve_in_workspace(str(outside), [root, outside]) == outside.resolve()


def test_symlink_inside_root_pointing_outside_is_rejected(layout: tuple[Path, Path]) -> None:
    root, outside = layout
    link = root / "escape"
    link.symlink_to(outside, target_is_directory=True)
    with pytest.raises(OutsideWorkspaceError):
        resolve_in_workspace(str(link), [root])


def test_symlink_inside_root_pointing_inside_resolves_to_target(layout: tuple[Path, Path]) -> None:
    root, _ = layout
    link = root / "shortcut"
    link.symlink_to(root / "project" / "src", target_is_directory=True)
    assert resolve_in_workspace(str(link), [root]) == (root / "project" / "src").resolve()


def test_symlinked_root_is_compared_by_real_path(layout: tuple[Path, Path], tmp_path: Path) -> None:
    root, _ = layout
    root_alias = tmp_path / "alias"
    root_alias.symlink_to(root, target_is_directory=True)
    assert resolve_in_workspace(str(root / "project"), [root_alias]) == (root / "project").resolve()


def test_missing_path_raises_file_not_found(layout: tuple[Path, Path]) -> None:
    root, _ = layout
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resolve_in_workspace(str(root / "nope"), [root])


def test_file_is_not_a_directory(layout: tuple[Path, Path]) -> None:
    root, _ = layout
    file = root / "file.txt"
    file.write_text("x")
    with pytest.raises(NotADirectoryError, match="not a directory"):
        resolve_in_workspace(str(file), [root])


def test_empty_path_raises() -> None:
    with pytest.raises(ValueError, match="path is empty"):
        resolve_in_workspace("", [Path("/")])


def test_no_roots_means_nothing_is_allowed(layout: tuple[Path, Path]) -> None:
    root, _ = layout
    with pytest.raises(OutsideWorkspaceError):
        resolve_in_workspace(str(root), [])


def test_refusal_never_says_where_an_outside_path_points(layout: tuple[Path, Path]) -> None:
    root, outside = layout
    (root / "escape").symlink_to(outside, target_is_directory=True)
    for attempt in (str(root / "escape"), str(outside), "/etc", str(root / ".." / "outside")):
        with pytest.raises(OutsideWorkspaceError) as refused:
            resolve_in_workspace(attempt, [root])
        assert str(outside) not in str(refused.value) and "/etc" not in str(refused.value)
        assert str(root) not in str(refused.value)


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/tmp/a\0b", "PATH_INVALID"),
        ("/tmp/" + "x" * 300, "PATH_INVALID"),
        ("/tmp/" + "é" * 200, "PATH_INVALID"),  # 400 bytes in one component
        ("/" + "a/" * 2100, "PATH_INVALID"),
        ("/tmp/\udcff", "PATH_INVALID"),
        # Outside, or unresolvable where /proc/1 is not ours to read: refused either way, never a 500.
        ("/proc/1/root", "PATH_OUTSIDE_WORKSPACE PATH_NOT_FOUND"),
        ("/proc/self/root/etc", "PATH_OUTSIDE_WORKSPACE PATH_NOT_FOUND"),
    ],
)
def test_bad_path_strings_are_invalid_arguments_naming_the_field(
    layout: tuple[Path, Path], path: str, reason: str
) -> None:
    root, _ = layout
    with pytest.raises(InvalidArgument) as refused:
        resolve_folder_argument(path, [root], "arguments.path")
    assert refused.value.violations[0].field == "arguments.path"
    assert refused.value.reason in reason.split()


def test_symlink_loop_is_not_found_not_a_crash(layout: tuple[Path, Path]) -> None:
    root, _ = layout
    (root / "loop").symlink_to(root / "loop")
    with pytest.raises(InvalidArgument) as refused:
        resolve_folder_argument(str(root / "loop"), [root], "path")
    assert refused.value.reason == "PATH_NOT_FOUND"
