"""`python -m services.tools`: the MCP tool registry and execution engine on port 3002."""

import os

# Set before gRPC loads. This process forks (uvloop's spawn) for every stdio MCP server it starts, while gRPC's
# threads are busy serving; gRPC core's fork handlers then log "skipping fork() handlers" and the child could die
# with SIGSEGV before it reached exec (seen as "Connection closed" on about every second registration under
# pytest). The child execs at once and needs none of gRPC's state, so the handlers are off.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")

from services.runtime.server import run_main
from services.tools.app import build

run_main("tools", build)
