"""`python -m services.agents`: the analysis agents on port 3001."""

from services.agents.app import build
from services.runtime.server import run_main

if __name__ == "__main__":  # the Code Analyzer's spawned worker processes import this module too
    run_main("agents", build)
