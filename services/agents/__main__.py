"""`python -m services.agents`: the analysis agents on port 3001."""

import os

# Set before gRPC loads: this process starts children (ruff, the Code Analyzer's spawned workers) while gRPC's
# threads serve, and gRPC core's fork handlers can crash a child between fork and exec (see services/tools/__main__.py).
# The children exec at once and need none of gRPC's state.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")

from services.agents.app import build
from services.runtime.server import run_main

if __name__ == "__main__":  # the Code Analyzer's spawned worker processes import this module too
    run_main("agents", build)
