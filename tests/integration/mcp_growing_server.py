"""A tiny stdio MCP server (the official SDK's MCPServer) that adds a tool at run time and announces it with a
tools list-changed notification: lets a test see the registry follow a real notification."""

from __future__ import annotations

from mcp.server import MCPServer
from mcp.server.mcpserver import Context

server = MCPServer("growing")


@server.tool(description="Adds a tool named `name` that echoes its text, then announces the new tool list.")
async def grow(name: str, ctx: Context) -> str:
    def echo(text: str) -> str:
        return text

    server.add_tool(echo, name=name, description=f"Echoes its text (added at run time as {name}).")
    await ctx.notify_tools_changed()
    return f"added {name}"


if __name__ == "__main__":
    server.run("stdio")
