"""A tiny stdio MCP server whose one tool's description is read from a file at start: lets a test change a
definition behind the registry's back (the external servers under test are not ours to change)."""

from __future__ import annotations

import sys
from pathlib import Path

from mcp.server import MCPServer

server = MCPServer("changing")
description = Path(sys.argv[1]).read_text().strip()


@server.tool(description=description)
def greet(name: str) -> str:
    return f"hello {name}"


if __name__ == "__main__":
    server.run("stdio")
