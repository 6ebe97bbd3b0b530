"""Path arguments no file can have are 400 INVALID_ARGUMENT naming the field through the edge, never 500."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest


@pytest.mark.parametrize(
    "make_path",
    [
        lambda root: f"{root}/app\u0000/x",
        lambda root: f"{root}/{'x' * 300}",
        lambda root: "/proc/1/root",
        lambda root: "/proc/self/root/etc",
        lambda root: f"{root}/{'a/' * 1500}",
    ],
    ids=["nul-byte", "300-char-name", "proc-1-root", "proc-self-root", "too-deep"],
)
def test_bad_path_is_400_with_the_field(rest: httpx.Client, sample_project: Path, make_path) -> None:  # type: ignore[no-untyped-def]
    response = rest.post("/v1/tools/file_inventory/execute", json={"arguments": {"path": make_path(sample_project)}})
    assert response.status_code == 400, response.text
    body = response.json()
    assert "arguments.path" in body["message"]
    assert "Traceback" not in response.text and "Error(" not in response.text


def test_refusal_does_not_say_where_a_symlink_points(rest: httpx.Client, sample_project: Path) -> None:
    link = sample_project / "escape-link"
    if not link.is_symlink():
        link.symlink_to("/etc", target_is_directory=True)
    try:
        response = rest.post("/v1/tools/file_inventory/execute", json={"arguments": {"path": str(link)}})
    finally:
        link.unlink()
    assert response.status_code == 400
    assert "/etc" not in response.text and "PATH_OUTSIDE_WORKSPACE" in response.text
