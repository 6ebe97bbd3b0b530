"""`python -m services.agents`: the analysis agents on port 3001."""

from services.agents.app import build
from services.runtime.server import run_main

run_main("agents", build)
