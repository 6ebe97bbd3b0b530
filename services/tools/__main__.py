"""`python -m services.tools`: the MCP tool registry and execution engine on port 3002."""

from services.runtime.server import run_main
from services.tools.app import build

run_main("tools", build)
