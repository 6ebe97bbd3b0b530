"""The built-in file tools through the edge: results, and refusals with the field named."""

from __future__ import annotations

from pathlib import Path

import httpx


def _run(rest: httpx.Client, tool: str, arguments: dict[str, object]) -> httpx.Response:
    return rest.post(f"/v1/tools/{tool}/execute", json={"arguments": arguments})


def test_file_tools_answer(rest: httpx.Client, sample_project: Path) -> None:
    listed = _run(rest, "list_files", {"path": str(sample_project), "glob": "*.py", "page_size": 2}).json()["result"]
    assert [f["path"] for f in listed["files"]] == ["app/clean.py", "app/main.py"] and listed["next_page_token"] == "2"
    read = _run(rest, "read_file", {"path": str(sample_project / "app" / "main.py"), "start_line": 5, "end_line": 5})
    assert read.json()["result"]["content"] == "        return eval(data)\n"
    found = _run(rest, "search_files", {"path": str(sample_project), "pattern": r"eval\(|hunter2"}).json()["result"]
    assert [(m["path"], m["line"]) for m in found["matches"]] == [("app/main.py", 5), ("app/settings.py", 1)]
    stats = _run(rest, "file_stats", {"path": str(sample_project)}).json()["result"]
    assert stats["files"] == 5 and stats["kind"] == "folder"


def test_file_tools_refuse_escapes_with_400(rest: httpx.Client, sample_project: Path) -> None:
    for tool, arguments in [
        ("read_file", {"path": "/etc/passwd"}),
        ("read_file", {"path": str(sample_project / ".." / ".." / "etc" / "hostname")}),
        ("list_files", {"path": str(sample_project) + "-evil"}),
        ("search_files", {"path": "/", "pattern": "root"}),
        ("read_file", {"path": str(sample_project / "app"), "start_line": 0}),
    ]:
        response = _run(rest, tool, arguments)
        assert response.status_code == 400, (tool, arguments, response.text)
        assert "arguments." in response.json()["message"]
