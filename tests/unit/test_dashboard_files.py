"""The dashboard's file server: only its own files and the pinned libraries, with their types and headers."""

from __future__ import annotations

import pytest

from services.gateway.dashboard_files import VENDOR, serve_file


def test_root_is_index_html_with_a_strict_policy() -> None:
    response = serve_file("/?from=bookmark")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert b'<script type="module" src="/dashboard/js/app.js">' in response.body
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self';" in policy and "connect-src 'self'" in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_own_files_have_their_types() -> None:
    assert serve_file("/dashboard/js/app.js").headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert serve_file("/dashboard/app.css").headers["Content-Type"] == "text/css; charset=utf-8"
    assert serve_file("/dashboard/favicon.svg").headers["Content-Type"] == "image/svg+xml"


@pytest.mark.parametrize("path", [
    "/dashboard/../dashboard_files.py", "/dashboard/%2e%2e/websocket.py", "/dashboard/package.json",
    "/dashboard/node_modules/mermaid/package.json", "/etc/passwd", "/dashboard/", "/v1/workflows",
])
def test_anything_else_is_not_found(path: str) -> None:
    response = serve_file(path)
    assert response.status_code == 404
    assert response.body == b"not found\n"


def test_pinned_libraries_are_served_and_cached() -> None:
    for name in VENDOR:
        response = serve_file(f"/dashboard/{name}")
        assert response.status_code == 200, name
        assert response.headers["Content-Type"] == "text/javascript; charset=utf-8"
        assert response.headers["Cache-Control"] == "public, max-age=86400"
        assert len(response.body) > 10_000
