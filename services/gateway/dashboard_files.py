"""The web dashboard's static files, served on the gateway's WebSocket port (Envoy routes `/` and `/dashboard/` there)."""

from __future__ import annotations

import asyncio
import email.utils
import functools
import mimetypes
import os
from pathlib import Path

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

FOLDER = Path(__file__).parent / "dashboard"
PREFIX = "/dashboard/"
# The pinned libraries (package-lock.json beside them, installed by `.ci/run` with npm ci): public name -> file.
VENDOR = {
    "vendor/mermaid.min.js": "node_modules/mermaid/dist/mermaid.min.js",
    "vendor/cytoscape.min.js": "node_modules/cytoscape/dist/cytoscape.min.js",
    "vendor/marked.umd.js": "node_modules/marked/lib/marked.umd.js",
    "vendor/purify.min.js": "node_modules/dompurify/dist/purify.min.js",
}
OWN_SUFFIXES = {".html", ".js", ".css", ".svg"}
# Mermaid writes inline styles into its SVG; everything else (scripts, fetch, WebSocket) stays on this origin.
POLICY = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
          "font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")


@functools.cache
def _files() -> dict[str, Path]:
    """Every public path and the file behind it, listed once; nothing outside this map is ever read."""
    own: dict[str, Path] = {}
    for folder, subfolders, names in os.walk(FOLDER):
        subfolders[:] = [d for d in subfolders if d != "node_modules"]  # thousands of files: never walked
        for name in names:
            path = Path(folder, name)
            if path.suffix in OWN_SUFFIXES:
                own[f"{PREFIX}{path.relative_to(FOLDER).as_posix()}"] = path
    own["/"] = FOLDER / "index.html"
    return own | {f"{PREFIX}{name}": FOLDER / target for name, target in VENDOR.items()}


def _response(status: int, reason: str, body: bytes, content_type: str, cache: str) -> Response:
    headers = Headers([
        ("Date", email.utils.formatdate(usegmt=True)),
        ("Connection", "close"),
        ("Content-Length", str(len(body))),
        ("Content-Type", content_type),
        ("Cache-Control", cache),
        ("Content-Security-Policy", POLICY),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
    ])
    return Response(status, reason, headers, body)


def serve_file(path: str) -> Response:
    """The file at a public path, or a 404; the query string is ignored."""
    path = path.split("?", 1)[0]
    file = _files().get("/" if path == "/index.html" else path)
    if file is None or not file.is_file():
        return _response(404, "Not Found", b"not found\n", "text/plain; charset=utf-8", "no-store")
    kind = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
    if kind.startswith("text/") or kind.endswith("javascript"):
        kind += "; charset=utf-8"
    # The libraries are pinned by version: cache them; the app's own files change with the code.
    cache = "public, max-age=86400" if "node_modules" in file.parts else "no-cache"
    return _response(200, "OK", file.read_bytes(), kind, cache)


async def process_request(connection: ServerConnection, request: Request) -> Response | None:
    """websockets' hook: WebSocket upgrades go on to the handshake, plain GETs get a dashboard file.

    The file is read in a worker thread: this event loop also answers the gateway's gRPC calls and health checks."""
    if request.headers.get("Upgrade", "").lower() == "websocket":
        return None
    return await asyncio.to_thread(serve_file, request.path)
